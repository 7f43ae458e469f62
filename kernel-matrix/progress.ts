/**
 * Progress of a kernel-matrix run: per kernel, what it is doing (download, boot, steps done of
 * N, replay). On a terminal one live line that is rewritten in place; otherwise (CI, a log
 * file) plain lines: each phase when it starts, and the step count about every 10% or 30 s.
 *
 * qemu-sut writes its counts to a small JSON file (`--progress FILE`, see qemu-sut.ts); the
 * matrix polls it.
 */
import { readFileSync } from 'node:fs';

/** What qemu-sut's --progress file holds. */
export interface SutProgress {
  /** False until the driver's ready marker. */
  readonly ready: boolean;
  /** Milliseconds since QEMU started. */
  readonly elapsedMs: number;
  /** Requests answered after hello. */
  readonly requests: number;
}

export function readSutProgress(file: string): SutProgress | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SutProgress;
  } catch {
    return null;
  }
}

export class Progress {
  private live = '';
  private lastPlain = '';
  private lastPlainAt = 0;
  private lastPlainFrac = -1;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    readonly tty: boolean = out.isTTY === true && process.env['CI'] === undefined,
  ) {}

  /** A line that stays (a log message): clears the live line first. */
  log(s: string): void {
    this.clear();
    this.out.write(`kernel-matrix: ${s}\n`);
    if (this.live !== '') this.out.write(this.live);
  }

  /**
   * The current state of one kernel. `done`/`total` are step counts when known; `phase` is
   * what it is doing (downloading, booting, random steps, fill, replay).
   */
  status(kernel: string, phase: string, done?: number, total?: number): void {
    const count = done === undefined ? '' : total === undefined ? ` ${done}` : ` ${done} of ${total}`;
    const text = `kernel-matrix: ${kernel}: ${phase}${count}`;
    if (this.tty) {
      const width = Math.max(20, (this.out.columns ?? 100) - 1);
      this.live = `\r\x1b[K${text.slice(0, width)}`;
      this.out.write(this.live);
      return;
    }
    const now = Date.now();
    const frac = done !== undefined && total !== undefined && total > 0 ? Math.floor((done / total) * 10) : -1;
    const head = `${kernel}: ${phase}`;
    const newPhase = head !== this.lastPlain;
    if (newPhase || frac > this.lastPlainFrac || now - this.lastPlainAt >= 30_000) {
      this.out.write(`${text}\n`);
      this.lastPlain = head;
      this.lastPlainAt = now;
      this.lastPlainFrac = newPhase ? frac : Math.max(frac, this.lastPlainFrac);
    }
  }

  /** Ends the live line (before a table or at the end). */
  clear(): void {
    if (this.tty && this.live !== '') this.out.write('\r\x1b[K');
  }

  done(): void {
    this.clear();
    this.live = '';
  }
}
