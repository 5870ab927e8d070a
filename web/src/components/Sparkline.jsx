// A tiny line of a function's calls over the window, drawn as SVG (cheap
// enough for one per row of a table).

/** @param {{values: (number | null)[], label: string, width?: number, height?: number}} props */
export function Sparkline({ values, label, width = 96, height = 24 }) {
  if (!values || values.length < 2) return <span class="muted">—</span>;
  const max = Math.max(1e-9, ...values.map((v) => v ?? 0));
  const step = width / (values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - ((v ?? 0) / max) * (height - 2)).toFixed(1)}`);
  const total = values.reduce((n, v) => n + (v ?? 0), 0);
  return (
    <svg class="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      <title>{label}</title>
      <polyline points={pts.join(' ')} fill="none" stroke={total > 0 ? 'var(--accent)' : 'var(--muted)'} stroke-width="1.5" />
    </svg>
  );
}
