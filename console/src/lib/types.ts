/** What the API returns, as far as the console reads it (services/api/src/routes/schemas.ts). */
export interface Job {
  id: string;
  tenant?: string;
  resourceId: string;
  kind: string;
  stackFqdn: string;
  operation: string;
  status: string;
  options?: Record<string, unknown>;
  createdBy?: { id: string; name: string; actsFor?: string };
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  reason?: string;
  position?: number;
  blockedBy?: string;
  lastSeq: number;
  linesSweptAt?: string;
  planFor?: string;
  stateVersion?: number;
  progress?: { started: number; done: number; failed: number; total?: number; percent?: number };
  approval?: {
    required: number;
    allowSelfApproval: boolean;
    approverRole: string;
    expiresAt: string;
    previewJobId: string;
    plan?: { changes: { urn: string; type: string; op: string }[]; counts: Record<string, number> };
    decisions: { by: { name: string; role: string }; decision: 'approve' | 'reject'; comment: string; at: string }[];
  };
  result?: { status: string; exitCode: number | null; error?: string; outputs?: unknown; summary?: Record<string, number> };
  drift?: { result: string; resources: { urn: string; type: string; change: string }[] };
}

export interface Resource {
  id: string;
  tenant?: string;
  kind: string;
  name: string;
  labels?: Record<string, string>;
  version: number;
  manifest?: string;
  stackFqdn: string;
  templateVersion?: string;
  createdAt: string;
  updatedAt: string;
  lastJob?: { id: string; operation: string; status: string };
}

export interface Template {
  name: string;
  source: 'system' | 'uploaded';
  owner?: string;
  version?: string;
  description?: string;
  readme?: string;
  provider?: string;
  allowed?: boolean;
}
