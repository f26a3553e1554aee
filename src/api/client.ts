/** Talking to other members' REST APIs. */

/** GET a member's /patroni; null on any error, timeout or non-JSON answer. */
export async function fetchMemberStatus(apiUrl: string, timeoutMs: number): Promise<Record<string, unknown> | null> {
  try {
    const url = new URL(apiUrl);
    url.pathname = '/patroni';
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body: unknown = await res.json();
    return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
