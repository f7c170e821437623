import { loadYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { API_VERSION, IMPORT_LABEL, KIND, SECRET_KEYS, type ServiceAccountImport } from "../../../common/api.ts";
import {
  buildImportSecretData,
  importSecretSkeleton,
  parseImportSecret,
  tokenExpiry,
} from "../../../common/import-secret.ts";
import type { Kubeconfig } from "../../../common/kubeconfig.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n";
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = (payload: unknown) => `${b64url({ alg: "RS256" })}.${b64url(payload)}.c2ln`;
const TOKEN = jwt({ sub: "system:serviceaccount:remote-ns:lister", exp: 1_900_000_000 });
const input = { importName: "c2-lister", token: TOKEN, caPem: PEM, namespace: "remote-ns", server: "https://10.0.0.1:6443" };
const utf8 = (data: Record<string, string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));

describe("buildImportSecretData", () => {
  it("base64-encodes every key, with a kubeconfig embedding the token", () => {
    const data = buildImportSecretData(input);
    expect(Object.keys(data).sort()).toEqual([...SECRET_KEYS].sort());
    const plain = utf8(data);
    expect(plain).toMatchObject({ token: TOKEN, "ca.crt": PEM, namespace: "remote-ns", server: input.server });
    const config = loadYaml<Kubeconfig>(plain.config ?? "");
    expect(config["current-context"]).toBe("c2-lister");
    expect(config.users).toEqual([{ name: "c2-lister", user: { token: TOKEN } }]);
    expect(config.clusters[0]?.cluster["certificate-authority-data"]).toBe(Buffer.from(PEM).toString("base64"));
    expect(config.contexts[0]?.context.namespace).toBe("remote-ns");
  });

  it("refuses to build what the sidecar would refuse to read", () => {
    expect(() => buildImportSecretData({ ...input, server: "http://10.0.0.1" })).toThrow(/server: .* is not an https URL/);
    expect(() => buildImportSecretData({ ...input, token: "" })).toThrow(/empty: token/);
  });
});

describe("parseImportSecret", () => {
  it("round-trips built data, from the API (base64) and from mounted files (utf8)", () => {
    const data = buildImportSecretData(input);
    const fromApi = parseImportSecret(data, { encoding: "base64" });
    expect(fromApi).toMatchObject({ token: TOKEN, caPem: PEM, namespace: "remote-ns", server: input.server });
    expect(parseImportSecret(utf8(data), { encoding: "utf8" })).toEqual(fromApi);
  });

  it("trims a trailing newline from files written by hand", () => {
    const files = { ...utf8(buildImportSecretData(input)), token: `${TOKEN}\n`, namespace: "remote-ns\n" };
    expect(parseImportSecret(files, { encoding: "utf8" })).toMatchObject({ token: TOKEN, namespace: "remote-ns" });
  });

  it("names exactly the missing and empty keys", () => {
    expect(() => parseImportSecret(undefined, { encoding: "base64" })).toThrow(
      "invalid import Secret: missing: token, ca.crt, namespace, server, config",
    );
    const { token: _token, ...rest } = utf8(buildImportSecretData(input));
    expect(() => parseImportSecret({ ...rest, server: " " }, { encoding: "utf8" })).toThrow(
      "invalid import Secret: missing: token; empty: server",
    );
  });

  it("names invalid values without quoting the token", () => {
    const files = {
      ...utf8(buildImportSecretData(input)),
      token: `${TOKEN} x`,
      "ca.crt": "not a cert",
      namespace: "Bad_NS",
      server: "http://10.0.0.1",
      config: "just: text",
    };
    let message = "";
    try {
      parseImportSecret(files, { encoding: "utf8" });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("token: contains whitespace or control characters");
    expect(message).toContain("ca.crt: not a PEM certificate");
    expect(message).toContain('namespace: "Bad_NS": a lowercase RFC 1123 label');
    expect(message).toContain('server: "http://10.0.0.1" is not an https URL');
    expect(message).toContain("config: not a kubeconfig");
    expect(message).not.toContain(TOKEN);
  });

  it("does not leak the token through a broken config", () => {
    const files = { ...utf8(buildImportSecretData(input)), config: `users: [{token: ${TOKEN}` };
    expect(() => parseImportSecret(files, { encoding: "utf8" })).toThrow(/^invalid import Secret: config: not a kubeconfig/);
    try {
      parseImportSecret(files, { encoding: "utf8" });
    } catch (err) {
      expect((err as Error).message).not.toContain(TOKEN);
    }
  });

  it("rejects data that is not base64 in base64 mode", () => {
    const data = { ...buildImportSecretData(input), namespace: "remote-ns!" };
    expect(() => parseImportSecret(data, { encoding: "base64" })).toThrow("invalid import Secret: namespace: not valid base64");
  });
});

describe("importSecretSkeleton", () => {
  const sai: ServiceAccountImport = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "c2-lister", namespace: "app", uid: "1234-uid" },
    spec: { clusterName: "c2", namespace: "remote-ns", name: "lister" },
  };

  it("is an Opaque Secret named after, labelled with and controlled by the import", () => {
    expect(importSecretSkeleton(sai)).toEqual({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: expect.stringMatching(/^c2-lister-token-[0-9a-f]{5}$/),
        namespace: "app",
        labels: { [IMPORT_LABEL]: "c2-lister" },
        ownerReferences: [
          { apiVersion: API_VERSION, kind: KIND, name: "c2-lister", uid: "1234-uid", controller: true, blockOwnerDeletion: true },
        ],
      },
      type: "Opaque",
    });
  });

  it("needs an import that exists (uid) to own the Secret", () => {
    expect(() => importSecretSkeleton({ ...sai, metadata: { name: "x", namespace: "app" } })).toThrow(/metadata.uid/);
  });
});

describe("tokenExpiry", () => {
  it("reads exp from a JWT without verifying it", () => {
    expect(tokenExpiry(TOKEN)).toEqual(new Date(1_900_000_000 * 1000));
    expect(tokenExpiry(`${TOKEN}\n`)).toEqual(new Date(1_900_000_000 * 1000));
  });

  it.each([
    ["empty", ""],
    ["opaque token", "abcdef0123456789"],
    ["two segments", "a.b"],
    ["payload not JSON", "eyJ.!!!.x"],
    ["payload not an object", `h.${b64url(42)}.s`],
    ["exp missing", jwt({ sub: "x" })],
    ["exp a string", jwt({ exp: "1900000000" })],
    ["exp out of range", jwt({ exp: 1e300 })],
  ])("returns undefined for %s", (_why, token) => {
    expect(tokenExpiry(token)).toBeUndefined();
  });
});

describe("parseImportSecret redaction", () => {
  it("redacts a token pasted into a quoted key", () => {
    const files = { ...utf8(buildImportSecretData(input)), server: TOKEN };
    expect(() => parseImportSecret(files, { encoding: "utf8" })).toThrow('server: "[REDACTED]" is not an https URL');
  });
});
