// One command-line option, written once: its schema (type, bounds, default), its flag and its help text.
// Config files are checked with the schemas; the commander flags and --help come from the same table.
import type { z } from 'zod';

export interface OptionSpec<S extends z.ZodTypeAny = z.ZodTypeAny> {
  schema: S;
  flag: string;
  help: string;
}

/** keeps the schema's own type, so the options parsed with it are typed (not `any`) */
export const opt = <S extends z.ZodTypeAny>(schema: S, flag: string, help: string): OptionSpec<S> => ({
  schema,
  flag,
  help,
});

type Shape<T extends Record<string, OptionSpec>> = { [K in keyof T]: T[K]['schema'] };

/** The zod shape of a table of options. */
export const shapeOf = <T extends Record<string, OptionSpec>>(t: T): Shape<T> =>
  Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.schema])) as Shape<T>;
