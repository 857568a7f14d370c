/**
 * A logger that records every call, so tests can assert on the log line a fault produced.
 */
import type { RevocationLogger } from '../../../src/revocation/index.js';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

export interface CapturingLogger extends RevocationLogger {
  readonly lines: LogLine[];
  /** Lines at `level` whose message contains `text` and whose fields include `fields`. */
  find(level: LogLine['level'], text: string, fields?: Record<string, unknown>): LogLine[];
}

export function captureLogger(): CapturingLogger {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg: string) => {
    lines.push({ level, obj: obj as Record<string, unknown>, msg });
  };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    find: (level, text, fields = {}) =>
      lines.filter((l) => l.level === level && l.msg.includes(text) && Object.entries(fields).every(([k, v]) => l.obj[k] === v)),
  };
}
