/**
 * DynamoDB update expressions from plain objects: the one builder every conditional or counting
 * update uses, so that placeholders, empty maps and skipped values are handled in one place.
 */

/** What an update does to one item. */
export interface UpdateSpec {
  /** Attributes to set. `undefined` values are skipped; `null` is stored as null. */
  set?: Record<string, unknown>;
  /** Numbers added atomically (ADD creates a missing attribute from 0). */
  add?: Record<string, number>;
  /** Attributes to remove. */
  remove?: readonly string[];
  /** A condition on the item as stored, with its own placeholders (see `names` and `values`). */
  condition?: string;
  /** Placeholders the condition uses (they must not look like the generated ones: `#u0`, `:u0`, `#ver`, `:ver`). */
  names?: Record<string, string>;
  values?: Record<string, unknown>;
  /** Optimistic concurrency: the update applies only while `attr` still holds `expected`. */
  expect?: VersionCheck;
}

export interface VersionCheck {
  /** The attribute that changes with every write (default `version`). */
  attr?: string;
  expected: unknown;
  /** An item that has no such attribute yet (never written) matches too. */
  orMissing?: boolean;
}

/** The parts of an UpdateCommand (or a transaction's Update) that the builder fills in. */
export interface BuiltUpdate {
  UpdateExpression: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

export function buildUpdate(spec: UpdateSpec): BuiltUpdate {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const name = (attr: string) => {
    const placeholder = `#u${Object.keys(names).length}`;
    names[placeholder] = attr;
    return placeholder;
  };
  const value = (v: unknown) => {
    const placeholder = `:u${Object.keys(values).length}`;
    values[placeholder] = v;
    return placeholder;
  };
  const sets = Object.entries(spec.set ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([attr, v]) => `${name(attr)} = ${value(v)}`);
  const adds = Object.entries(spec.add ?? {}).map(([attr, v]) => `${name(attr)} ${value(v)}`);
  const removes = (spec.remove ?? []).map(name);
  const clauses = [
    sets.length ? `SET ${sets.join(', ')}` : '',
    adds.length ? `ADD ${adds.join(', ')}` : '',
    removes.length ? `REMOVE ${removes.join(', ')}` : '',
  ].filter(Boolean);
  if (!clauses.length) throw new Error('an update must set, add or remove something');

  const conditions: string[] = [];
  if (spec.condition) conditions.push(spec.condition);
  if (spec.expect) {
    names['#ver'] = spec.expect.attr ?? 'version';
    values[':ver'] = spec.expect.expected;
    conditions.push(spec.expect.orMissing ? '(attribute_not_exists(#ver) OR #ver = :ver)' : '#ver = :ver');
  }
  for (const [k, v] of Object.entries(spec.names ?? {})) {
    if (k in names) throw new Error(`placeholder ${k} is the builder's`);
    names[k] = v;
  }
  for (const [k, v] of Object.entries(spec.values ?? {})) {
    if (k in values) throw new Error(`placeholder ${k} is the builder's`);
    values[k] = v;
  }
  return {
    UpdateExpression: clauses.join(' '),
    ...(conditions.length ? { ConditionExpression: conditions.join(' AND ') } : {}),
    ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
    ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
  };
}
