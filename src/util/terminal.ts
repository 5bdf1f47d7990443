// Whether a person watches stderr as it is written: a TTY outside CI. CI logs are files even where a runner
// hands the job a pseudo-terminal, and a redrawn bar or a coloured line is noise there. The one rule behind
// the training and evaluation progress bars and the default log format.
export function isInteractive(
  stream: { isTTY?: boolean } = process.stderr,
  env: Record<string, string | undefined> = process.env,
): boolean {
  return stream.isTTY === true && !env.CI;
}
