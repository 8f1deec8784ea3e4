/** @module ui/chart — a uPlot time-series chart as a Preact component, resized with its container. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  color: string;
  values: number[];
}

export interface ChartProps {
  title: string;
  /** Epoch seconds, ascending. */
  times: number[];
  series: Series[];
  /** Formats y-axis ticks and legend values. */
  format?: (v: number) => string;
  /** Ticks at powers of two, so byte axes read 4 MiB, 8 MiB rather than 4.77 MiB. */
  binary?: boolean;
  height?: number;
}

const POWERS_OF_TWO = Array.from({ length: 60 }, (_, i) => 2 ** i);

export function Chart({ title, times, series, format, binary = false, height = 220 }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const fmt = format ?? ((v: number) => String(Math.round(v)));

  // Rebuild when the set of series changes; otherwise only new data is pushed in.
  const shape = series.map((s) => s.label).join('|');
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#5b6472', grid: { stroke: '#eef0f3' }, space: 90 },
        {
          stroke: '#5b6472',
          grid: { stroke: '#eef0f3' },
          values: (_u, ticks) => ticks.map(fmt),
          ...(binary ? { incrs: POWERS_OF_TWO } : {}),
          // Wide enough for the longest tick label, so labels such as "28.6 MiB/s" are never clipped.
          size: (_u, values) => 16 + 7 * Math.max(3, ...(values ?? []).map((v) => String(v).length)),
        },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: `${s.color}22`,
          width: 2,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null ? '–' : fmt(v)),
        })),
      ],
    };
    const u = new uPlot(opts, [times, ...series.map((s) => s.values)], el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(el.clientWidth, 200), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, height, binary]);

  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)]);
  }, [times, series]);

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-body" />
    </figure>
  );
}
