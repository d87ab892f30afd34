/**
 * The step graph: edges go from a step to the steps it depends on. Everything here assumes ids are
 * unique and every dependency exists (validation checks that first).
 */
export interface GraphNode {
  id: string;
  depends_on: readonly string[];
}

/** At most this many cycles are reported. */
export const MAX_CYCLES = 20;
/** A reported cycle names at most this many steps (then `…` and the step it closes on). */
export const MAX_CYCLE_PATH = 20;

/**
 * Cycles, linear in steps plus edges: one per group of steps that depend on each other (a strongly
 * connected component, found by Tarjan's algorithm), as a closed path `[a, b, c, a]` (a depends on b …)
 * starting at the group's first step in definition order and following the shortest way back to it.
 * At most `limit` of them, in the order of their first step; a path longer than MAX_CYCLE_PATH steps
 * is cut to its first steps, `…` and the closing step.
 */
export function findCycles(nodes: readonly GraphNode[], limit = MAX_CYCLES): string[][] {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const edges = nodes.map((n) => n.depends_on.map((d) => index.get(d)).filter((d): d is number => d !== undefined));
  const component = strongComponents(edges);
  const size = new Map<number, number>();
  for (const c of component) size.set(c, (size.get(c) ?? 0) + 1);

  const cycles: string[][] = [];
  const reported = new Set<number>();
  for (let start = 0; start < nodes.length && cycles.length < limit; start++) {
    const c = component[start];
    if (reported.has(c) || size.get(c)! < 2) continue;
    reported.add(c);
    // Breadth-first from the start inside its component, until an edge leads back to the start.
    const previous = new Map<number, number>([[start, -1]]);
    const queue = [start];
    let closing = -1;
    for (let head = 0; head < queue.length && closing < 0; head++) {
      const at = queue[head];
      for (const next of edges[at]) {
        if (component[next] !== c) continue;
        if (next === start) {
          closing = at;
          break;
        }
        if (!previous.has(next)) {
          previous.set(next, at);
          queue.push(next);
        }
      }
    }
    const path: number[] = [];
    for (let at = closing; at !== -1; at = previous.get(at)!) path.push(at);
    path.reverse();
    const ids = path.map((i) => nodes[i].id);
    cycles.push(ids.length > MAX_CYCLE_PATH ? [...ids.slice(0, MAX_CYCLE_PATH), '…', nodes[start].id] : [...ids, nodes[start].id]);
  }
  return cycles;
}

/** Tarjan's strongly connected components, iterative: the component number of each node. */
function strongComponents(edges: readonly number[][]): number[] {
  const n = edges.length;
  const order = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const component = new Array<number>(n).fill(-1);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  let counter = 0;
  let components = 0;
  for (let root = 0; root < n; root++) {
    if (order[root] !== -1) continue;
    const frames: Array<{ node: number; next: number }> = [{ node: root, next: 0 }];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (frames.length) {
      const frame = frames[frames.length - 1];
      const { node } = frame;
      if (frame.next < edges[node].length) {
        const to = edges[node][frame.next++];
        if (order[to] === -1) {
          order[to] = low[to] = counter++;
          stack.push(to);
          onStack[to] = true;
          frames.push({ node: to, next: 0 });
        } else if (onStack[to]) low[node] = Math.min(low[node], order[to]);
        continue;
      }
      frames.pop();
      if (frames.length) low[frames[frames.length - 1].node] = Math.min(low[frames[frames.length - 1].node], low[node]);
      if (low[node] === order[node]) {
        let member: number;
        do {
          member = stack.pop()!;
          onStack[member] = false;
          component[member] = components;
        } while (member !== node);
        components++;
      }
    }
  }
  return component;
}

/** Topological levels: level 0 has no dependencies, level n depends on something of level n-1. Definition order inside a level. */
export function levelsOf(nodes: readonly GraphNode[]): string[][] {
  const depth = depthsOf(nodes);
  const levels: string[][] = [];
  for (const node of nodes) {
    const d = depth.get(node.id)!;
    (levels[d] ??= []).push(node.id);
  }
  return levels;
}

function depthsOf(nodes: readonly GraphNode[]): Map<string, number> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map<string, number>();
  const visit = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    // Recursion depth is bounded by the step limit (200).
    const deps = byId.get(id)!.depends_on;
    const d = deps.length ? 1 + Math.max(...deps.map(visit)) : 0;
    depth.set(id, d);
    return d;
  };
  for (const node of nodes) visit(node.id);
  return depth;
}

/**
 * The longest chain of dependent steps (by number of steps), first step first. Among equally long
 * chains the one ending earliest in definition order is chosen, and within it the earliest dependency.
 */
export function criticalPath(nodes: readonly GraphNode[]): string[] {
  if (!nodes.length) return [];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const order = new Map(nodes.map((n, i) => [n.id, i]));
  const length = new Map<string, number>();
  const previous = new Map<string, string | undefined>();
  const visit = (id: string): number => {
    const known = length.get(id);
    if (known !== undefined) return known;
    let best: string | undefined;
    let bestLength = 0;
    for (const dep of byId.get(id)!.depends_on) {
      const l = visit(dep);
      if (l > bestLength || (l === bestLength && best !== undefined && order.get(dep)! < order.get(best)!)) {
        best = dep;
        bestLength = l;
      }
    }
    length.set(id, bestLength + 1);
    previous.set(id, best);
    return bestLength + 1;
  };
  let end = nodes[0].id;
  for (const node of nodes) if (visit(node.id) > visit(end)) end = node.id;
  const path: string[] = [];
  for (let at: string | undefined = end; at !== undefined; at = previous.get(at)) path.unshift(at);
  return path;
}

/**
 * For each step, every step it depends on directly or transitively (a step in a cycle is among its
 * own). Computed on the groups of mutually dependent steps (Tarjan numbers a group after every group
 * it depends on) with bit sets: O(edges × steps / 32), about 40 000 word operations at the step limit.
 */
export function ancestorsOf(nodes: readonly GraphNode[]): Map<string, Set<string>> {
  const n = nodes.length;
  const index = new Map(nodes.map((node, i) => [node.id, i]));
  const edges = nodes.map((node) => node.depends_on.map((d) => index.get(d)).filter((d): d is number => d !== undefined));
  const component = strongComponents(edges);
  const count = component.reduce((max, c) => Math.max(max, c + 1), 0);
  const words = Math.ceil(n / 32);
  const members = Array.from({ length: count }, () => new Uint32Array(words));
  const reach = Array.from({ length: count }, () => new Uint32Array(words));
  const inCycle = new Array<boolean>(count).fill(false);
  const byComponent: number[][] = Array.from({ length: count }, () => []);
  component.forEach((c, i) => {
    members[c][i >>> 5] |= 1 << (i & 31);
    byComponent[c].push(i);
  });
  for (let c = 0; c < count; c++) {
    const own = reach[c];
    for (const i of byComponent[c]) {
      for (const d of edges[i]) {
        const dc = component[d];
        if (dc === c) {
          inCycle[c] = true;
          continue;
        }
        const other = reach[dc];
        const its = members[dc];
        for (let w = 0; w < words; w++) own[w] |= other[w] | its[w];
      }
    }
    if (inCycle[c]) for (let w = 0; w < words; w++) own[w] |= members[c][w];
  }
  const out = new Map<string, Set<string>>();
  nodes.forEach((node, i) => {
    const bits = reach[component[i]];
    const set = new Set<string>();
    for (let j = 0; j < n; j++) if (bits[j >>> 5] & (1 << (j & 31))) set.add(nodes[j].id);
    out.set(node.id, set);
  });
  return out;
}

/** For each step, every step that depends on it directly or transitively. */
export function descendantsOf(nodes: readonly GraphNode[]): Map<string, Set<string>> {
  const ancestors = ancestorsOf(nodes);
  const out = new Map<string, Set<string>>(nodes.map((n) => [n.id, new Set<string>()]));
  for (const [id, set] of ancestors) for (const a of set) out.get(a)?.add(id);
  return out;
}
