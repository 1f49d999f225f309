// Speed and time left over a sliding window (src/ui/rate.ts), and the numbers shown with them.

import { describe, expect, it } from 'vitest';
import { formatByteRate, formatTimeLeft } from '../../src/ui/format';
import { RateMeter } from '../../src/ui/rate';

describe('RateMeter', () => {
  it('measures units per second over the last few seconds', () => {
    const meter = new RateMeter();
    expect(meter.perSecond()).toBeNull();
    meter.add(0, 0);
    meter.add(100, 1000);
    expect(meter.perSecond()).toBe(100);
    expect(meter.secondsUntil(600)).toBe(5);
    // 100 a second for 5 s, then 1000 a second: old samples leave the window and the rate follows.
    for (let second = 2; second <= 11; second++)
      meter.add(second <= 5 ? 100 * second : 500 + 1000 * (second - 5), 1000 * second);
    expect(meter.perSecond()).toBe(1000);
  });

  it('knows nothing until samples span some time, and after a reset', () => {
    const meter = new RateMeter();
    meter.add(0, 0);
    meter.add(10, 50);
    expect(meter.secondsUntil(100)).toBeNull();
    meter.reset();
    expect(meter.perSecond()).toBeNull();
  });
});

describe('formats', () => {
  it('writes rates and times left for people', () => {
    expect(formatByteRate(1536 * 1024)).toBe('1.5 MiB/s');
    expect(formatTimeLeft(42.4)).toBe('42 s');
    expect(formatTimeLeft(125)).toBe('2 min 5 s');
    expect(formatTimeLeft(7300)).toBe('2 h 1 min');
  });
});
