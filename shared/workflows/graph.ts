/**
 * The step graph: edges go from a step to the steps it depends on. Everything here assumes ids are
 * unique and every dependency exists (validation checks that first).
 */
export interface GraphNode {
  id: string;
  depends_on: readonly string[];
}

/** Every cycle found by a depth-first walk, each as a closed path `[a, b, c, a]` (a depends on b …). */
export function findCycles(nodes: readonly GraphNode[]): string[][] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[][] = [];
  const seen = new Set<string>();
  for (const root of nodes) {
    if (state.has(root.id)) continue;
    // Iterative DFS: each frame is a node and the index of the next dependency to look at.
    const stack: Array<{ id: string; next: number }> = [{ id: root.id, next: 0 }];
    state.set(root.id, 'visiting');
    while (stack.length) {
      const frame = stack[stack.length - 1];
      const deps = byId.get(frame.id)?.depends_on ?? [];
      if (frame.next >= deps.length) {
        state.set(frame.id, 'done');
        stack.pop();
        continue;
      }
      const dep = deps[frame.next++];
      if (!byId.has(dep) || dep === frame.id) continue;
      const depState = state.get(dep);
      if (depState === 'visiting') {
        const from = stack.findIndex((f) => f.id === dep);
        const cycle = [...stack.slice(from).map((f) => f.id), dep];
        const key = canonicalCycle(cycle);
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (depState === undefined) {
        state.set(dep, 'visiting');
        stack.push({ id: dep, next: 0 });
      }
    }
  }
  return cycles;
}

/** Same cycle, whatever node it was entered at. */
function canonicalCycle(cycle: string[]): string {
  const ring = cycle.slice(0, -1);
  let best = 0;
  for (let i = 1; i < ring.length; i++) if (ring[i] < ring[best]) best = i;
  return [...ring.slice(best), ...ring.slice(0, best)].join('\u0000');
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

/** For each step, every step it depends on directly or transitively. */
export function ancestorsOf(nodes: readonly GraphNode[]): Map<string, Set<string>> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const memo = new Map<string, Set<string>>();
  const visit = (id: string): Set<string> => {
    const known = memo.get(id);
    if (known) return known;
    const out = new Set<string>();
    memo.set(id, out);
    for (const dep of byId.get(id)?.depends_on ?? []) {
      out.add(dep);
      for (const a of visit(dep)) out.add(a);
    }
    return out;
  };
  for (const node of nodes) visit(node.id);
  return memo;
}

/** For each step, every step that depends on it directly or transitively. */
export function descendantsOf(nodes: readonly GraphNode[]): Map<string, Set<string>> {
  const ancestors = ancestorsOf(nodes);
  const out = new Map<string, Set<string>>(nodes.map((n) => [n.id, new Set<string>()]));
  for (const [id, set] of ancestors) for (const a of set) out.get(a)?.add(id);
  return out;
}
