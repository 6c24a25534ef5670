/** A strict reader of the Prometheus text exposition format (0.0.4), for the metrics tests. */
import { expect } from 'vitest';

/** Lines of the text exposition format: comments, and `name{labels} value`. */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/;
const COMMENT = /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$/;

/** Checks the text line by line, and every histogram's buckets; returns the samples by series. */
export function parseExposition(text: string): Map<string, number> {
  expect(text.endsWith('\n')).toBe(true);
  const samples = new Map<string, number>();
  for (const line of text.trimEnd().split('\n')) {
    if (line.startsWith('#')) {
      expect(line).toMatch(COMMENT);
      continue;
    }
    expect(line).toMatch(SAMPLE);
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), line.slice(at + 1) === '+Inf' ? Infinity : Number(line.slice(at + 1)));
  }
  const histograms = [...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((match) => match[1]!);
  for (const name of histograms) {
    const buckets = [...samples].filter(([series]) => series.startsWith(`${name}_bucket{`));
    const counts = buckets.map(([, count]) => count);
    expect(counts).toEqual([...counts].sort((a, b) => a - b)); // cumulative
    expect(buckets.at(-1)![0]).toBe(`${name}_bucket{le="+Inf"}`);
    expect(counts.at(-1)).toBe(samples.get(`${name}_count`));
    expect(samples.has(`${name}_sum`)).toBe(true);
  }
  return samples;
}
