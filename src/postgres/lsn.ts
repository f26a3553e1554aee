/** LSNs as numbers: '16/B374D848' → 0x16B374D848. Exact up to 2^53 bytes of WAL. */
export function parseLsn(s: string | null | undefined): number | null {
  if (!s) return null;
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(s.trim());
  if (!m) return null;
  return parseInt(m[1]!, 16) * 0x1_0000_0000 + parseInt(m[2]!, 16);
}

export function formatLsn(n: number): string {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n % 0x1_0000_0000;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
