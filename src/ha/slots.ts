/**
 * Which physical replication slots a member keeps (Patroni's get_replication_slots): the leader one
 * per member that streams from it — every member except those tagged `replicatefrom` another member
 * that exists; a replica one per member tagged `replicatefrom` it (cascading replication).
 */
import type { Cluster } from '../dcs/types.js';
import { slotNameForMember } from '../postgres/types.js';

export function slotNamesFor(me: string, role: 'leader' | 'replica', cluster: Cluster): string[] {
  const leader = cluster.leader?.name;
  const exists = (n: string) => cluster.members.some((m) => m.name === n);
  const from = (m: Cluster['members'][number]) => {
    const r = m.data.tags?.replicatefrom;
    return typeof r === 'string' && r !== '' ? r : null;
  };
  return cluster.members
    .filter((m) => m.name !== me)
    .filter((m) => {
      const r = from(m);
      if (role === 'leader') return r === null || r === me || !exists(r) || r === leader;
      return r === me && m.name !== leader;
    })
    .map((m) => slotNameForMember(m.name))
    .sort();
}
