/**
 * The typed shapes of a job document's free-form fields (stored as Mixed): what a job was asked to
 * do (`options`), what a drift check found (`drift`) and what a sandboxed run used (`usage`). The
 * approval and the compensation are in approvals.ts.
 */

/** Which differences a drift check does not report: a resource's paths (none: the whole resource). */
export interface DriftIgnoreRule {
  urn: string;
  paths?: string[];
}

/**
 * What a job was asked to do beyond its operation (the API's request, or the service's own job). A
 * type, not an interface: the API's view (a record of unknowns) takes it as it is.
 */
export type JobOptions = {
  message?: string;
  /** The run's time limit (JOB_TIMEOUT_SECONDS when absent). */
  timeoutSeconds?: number;
  expectNoChanges?: boolean;
  targets?: string[];
  refresh?: boolean;
  parallel?: number;
  /** state-delete, state-unprotect, state-rename: the resource; state-rename: its new name. */
  urn?: string;
  name?: string;
  /** repair: what to do with each pending create (one action for all, as the CLI takes it). */
  pendingCreates?: { urn: string; action: 'clear' | 'import'; id?: string }[];
  /** restore: the state version (seq) to put back, or the uploaded state (an import). */
  version?: number;
  upload?: string;
  /**
   * preview: the gated operation it plans (approval gate). `destroy`: `pulumi destroy --preview-only`;
   * `restore`: a preview of the program against the state to put back, in a scratch backend, so the
   * stack's own state is not touched; `up` (or none): a plain preview.
   */
  previewOf?: 'up' | 'destroy' | 'restore';
  /** preview of a gated up under `approvals.updatePlans`: save Pulumi's update plan. */
  savePlan?: boolean;
  /** drift-check: differences not to report; whether a drift found queues an up. */
  ignore?: DriftIgnoreRule[];
  autoRemediate?: boolean;
  /** up: what puts the stack back if it fails. */
  compensation?: 'none' | 'destroy' | 'reapply_last_good';
  /** A compensation reapplying the last good run: the resource's last good manifest runs, not the current one. */
  lastGood?: boolean;
};

/** A resource whose state differs from the cloud, as a drift check reports it. */
export interface DriftedResource {
  urn: string;
  type: string;
  /** `update` (properties changed out of band) or `delete` (gone from the cloud). */
  change: 'update' | 'delete';
  /** Each property that differs: its path and the values in the state (`old`) and in the cloud (`new`). */
  properties: { path: string; old?: unknown; new?: unknown }[];
}

/** A drift check's report. */
export interface DriftReport {
  /** `unknown` when the check could not complete: never `drifted` on an error. */
  result: 'drifted' | 'no_drift' | 'unknown';
  resources: DriftedResource[];
  /** Drift found but ignored by the schedule's rules (URN and paths). */
  ignored: number;
  error?: string;
}

/** A sandboxed job: its peak memory and CPU time, and the limits it ran under (bytes, cores, processes). */
export interface JobUsage {
  peakMemoryBytes?: number;
  cpuSeconds?: number;
  limits: { memoryBytes: number; cpus: number; pids: number; diskBytes: number };
}
