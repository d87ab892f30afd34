import type { Quota } from './quota.js';

/** An agent as stored. Its key, if it has its own, is only a reference into the SecretStore. */
export interface AgentRecord {
  agent_id: string;
  name: string;
  description?: string;
  provider_id: string;
  model?: string;
  api_key_ref?: string;
  api_key_last4?: string;
  quota: Quota;
  max_concurrency: number;
  priority: number;
  enabled: boolean;
  created_by: string;
  created_at: string;
  updated_at: string;
  last_used_at?: string;
}
