import { useState } from 'preact/hooks';
import { Empty } from './ui.js';

/** Pulumi's marker of a secret value in exported outputs and state. */
const SECRET_SIG = '4dabf18193072939515e22adb298388d';

function isSecret(value: unknown): boolean {
  return value === '[secret]' || (typeof value === 'object' && value !== null && SECRET_SIG in value);
}

/** A stack's outputs; secrets show as a mask, never their value. */
export function Outputs({ outputs }: { outputs: unknown }) {
  const entries = outputs && typeof outputs === 'object' ? Object.entries(outputs as Record<string, unknown>) : [];
  const [open, setOpen] = useState<string>();
  if (entries.length === 0) return <Empty>No outputs.</Empty>;
  return (
    <table class="compact outputs">
      <caption class="sr-only">Outputs</caption>
      <tbody>
        {entries.map(([key, value]) => (
          <tr key={key}>
            <th scope="row" class="mono">
              {key}
            </th>
            <td class="mono">
              {isSecret(value) ? (
                <span class="secret" title="A secret: its value is not shown">
                  ••••••• secret
                </span>
              ) : typeof value === 'string' ? (
                value
              ) : (
                <button type="button" class="link" aria-expanded={open === key} onClick={() => setOpen(open === key ? undefined : key)}>
                  {open === key ? <pre>{JSON.stringify(value, null, 2)}</pre> : JSON.stringify(value).slice(0, 80)}
                </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
