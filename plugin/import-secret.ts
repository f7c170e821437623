// Reading an import's current Secret through the API.
import type { ServiceAccountImport } from "../common/api.ts";
import { type ImportSecretContents, parseImportSecret } from "../common/import-secret.ts";
import { UserError, isNotFound } from "../common/kube.ts";
import type { Session } from "./session.ts";

export async function importSecretOf(session: Session, name: string): Promise<{ sai: ServiceAccountImport; contents: ImportSecretContents }> {
  const sai = await session.getImport(name);
  const secretName = sai.status?.secrets?.[0]?.name;
  if (!secretName) {
    const ready = sai.status?.conditions?.find((c) => c.type === "Ready");
    throw new UserError(`serviceaccountimport "${name}" has no token yet` + (ready ? `: ${ready.reason}: ${ready.message}` : " (is the controller running?)"));
  }
  try {
    const secret = await session.readSecret(secretName, sai.metadata.namespace!);
    return { sai, contents: parseImportSecret(secret.data, { encoding: "base64" }) };
  } catch (error) {
    if (isNotFound(error)) throw new UserError(`Secret "${secretName}" of serviceaccountimport "${name}" not found: the controller recreates it`);
    if (error instanceof Error && !("code" in error)) throw new UserError(`Secret "${secretName}": ${error.message}`);
    throw session.fail(error, `reading Secret "${secretName}"`);
  }
}
