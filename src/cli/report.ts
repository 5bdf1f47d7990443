// `vsl report RUN_DIR [-o FILE.html]`: the run report (src/report/runReport.ts) as one self-contained page.
import type { Command } from 'commander';
import { writeRunReport } from '../report/runReport.js';

export function register(program: Command): void {
  program
    .command('report')
    .description(
      'write the HTML report of a training run: summary, loss / lr / gradient-norm curves, dev recall per validation, the best recall table, the options',
    )
    .argument('<run-dir>', 'run directory of vsl train (--model-name): train.log, metrics.jsonl, checkpoints')
    .option('-o, --out <file.html>', 'where to write the page (default: <run-dir>/report.html)')
    .action(async (dir: string, o: { out?: string }) => {
      const file = await writeRunReport(dir, o.out);
      process.stdout.write(`report written to ${file}\n`);
    });
}
