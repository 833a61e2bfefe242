/**
 * The append-only audit file. `write` only queues the fields (no syscall, no
 * crypto on the request's path); a timer seals the queued records into the
 * chain and appends them with one write per batch. The queue is bounded
 * (`maxBufferedRecords`): past it records are counted as lost and a `gap`
 * record saying how many is sealed into the chain, so the loss shows in
 * `audit verify` instead of passing unseen. `close()` writes everything and
 * fsyncs (graceful shutdown loses nothing). Past `maxBytes` the file is
 * renamed `<path>.<time>.<last seq>` and a new one continues the same chain. On start
 * the chain resumes from the file's last record (read from the tail); a torn
 * last line (a crash mid-write) is cut off and a `restart` record says so.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync, renameSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { AuditChain, type AuditFields, type AuditRecord, line } from './record.ts';

export interface AuditFileOptions {
  path: string;
  key: string;
  maxBytes: number;
  flushIntervalMs: number;
  maxBufferedRecords: number;
  onError?: (error: Error) => void;
}

/** The last complete record of a file, cutting off a torn last line; undefined for an empty or missing file. */
function resumePoint(path: string): { last: AuditRecord | undefined; torn: boolean } {
  if (!existsSync(path)) return { last: undefined, torn: false };
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return { last: undefined, torn: false };
    const length = Math.min(size, 1 << 20);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const text = buffer.toString('utf8');
    let end = text.length;
    let torn = false;
    if (!text.endsWith('\n')) {
      end = text.lastIndexOf('\n') + 1;
      ftruncateSync(fd, size - Buffer.byteLength(text.slice(end)));
      torn = true;
    }
    const lines = text.slice(0, end).split('\n').filter(Boolean);
    const lastLine = lines[lines.length - 1];
    return { last: lastLine === undefined ? undefined : (JSON.parse(lastLine) as AuditRecord), torn };
  } finally {
    closeSync(fd);
  }
}

export class AuditFileSink {
  private readonly options: AuditFileOptions;
  private readonly chain: AuditChain;
  private queue: AuditFields[] = [];
  private lost = 0;
  private handle: FileHandle | undefined;
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  /** The last seq in the file being rotated away (part of its new name). */
  private rotatedSeq = 0;
  /** Records lost to a full buffer since start (also written as gap records). */
  dropped = 0;

  private constructor(options: AuditFileOptions, chain: AuditChain) {
    this.options = options;
    this.chain = chain;
  }

  static async open(options: AuditFileOptions): Promise<AuditFileSink> {
    const { last, torn } = resumePoint(options.path);
    const sink = new AuditFileSink(options, new AuditChain(options.key, last?.mac, last?.seq));
    await sink.openFile();
    if (torn) sink.queue.push({ time: new Date().toISOString(), type: 'restart', detail: 'a torn last record (crash mid-write) was cut off' });
    return sink;
  }

  private async openFile(): Promise<void> {
    this.handle = await open(this.options.path, 'a', 0o600);
    this.size = (await this.handle.stat()).size;
  }

  /** Queues a record (O(1)); it is sealed and written within flushIntervalMs. */
  write(fields: AuditFields): void {
    if (this.closed) return;
    if (this.queue.length >= this.options.maxBufferedRecords) {
      this.lost++;
      this.dropped++;
      return;
    }
    this.queue.push(fields);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.options.flushIntervalMs);
  }

  /** Seals and appends what is queued (one write per batch). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeBatch()).catch((error: Error) => this.options.onError?.(error));
    return this.flushing;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (this.lost > 0) {
      batch.push({ time: new Date().toISOString(), type: 'gap', lost: this.lost, detail: 'records lost: the audit buffer was full' });
      this.lost = 0;
    }
    if (batch.length === 0 || !this.handle) return;
    const lastWritten = this.chain.seq;
    let text = '';
    for (const fields of batch) text += line(this.chain.seal(fields));
    const bytes = Buffer.from(text);
    if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) {
      this.rotatedSeq = lastWritten;
      await this.rotate();
    }
    await this.handle.write(bytes);
    this.size += bytes.length;
  }

  private async rotate(): Promise<void> {
    await this.handle?.sync();
    await this.handle?.close();
    // Named by time and the last seq in it: unique even for two rotations in one millisecond, and sorted oldest first.
    renameSync(this.options.path, `${this.options.path}.${new Date().toISOString().replace(/[:.]/g, '-')}.${String(this.rotatedSeq).padStart(12, '0')}`);
    await this.openFile();
  }

  /** Writes everything queued and fsyncs; later writes are ignored. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    this.closed = true;
    await this.handle?.sync();
    await this.handle?.close();
    this.handle = undefined;
  }
}
