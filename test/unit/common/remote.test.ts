// checkToken: what the controller makes of a SelfSubjectReview made with an import's token, against
// a local HTTPS stand-in for the remote API server that answers each token its own way.
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCA, issue } from "../../../common/pki.ts";
import { checkToken } from "../../../common/remote.ts";

let server: Server;
let caPem: string;
let url: string;
const seen: string[] = [];

/** The status and body the stand-in answers for each bearer token. */
const ANSWERS: Record<string, [number, unknown]> = {
  works: [201, { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview", status: { userInfo: { username: "system:serviceaccount:default:pod-lister" } } }],
  revoked: [401, { kind: "Status", apiVersion: "v1", status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 }],
  "old-server": [404, { kind: "Status", apiVersion: "v1", status: "Failure", message: "the server could not find the requested resource", reason: "NotFound", code: 404 }],
  overloaded: [503, { kind: "Status", apiVersion: "v1", status: "Failure", message: "unavailable", code: 503 }],
};

beforeAll(async () => {
  const ca = await createCA("remote-ca");
  caPem = ca.cert;
  const cert = await issue(ca, { commonName: "remote", usage: "server", ipAddresses: ["127.0.0.1"] });
  server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    seen.push(`${req.method} ${req.url}`);
    const [status, body] = ANSWERS[token] ?? [500, {}];
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

describe("checkToken", () => {
  it.each([
    { token: "works", want: { kind: "user", username: "system:serviceaccount:default:pod-lister" } },
    { token: "revoked", want: { kind: "rejected", message: 'cluster "cluster2" answered 401 Unauthorized' } },
    { token: "old-server", want: { kind: "user" } },
    { token: "overloaded", want: { kind: "failed", failure: expect.objectContaining({ reason: "RemoteUnreachable" }) } },
  ])("a token the remote answers as $token", async ({ token, want }) => {
    expect(await checkToken({ clusterName: "cluster2", server: url, caPem }, token)).toEqual(want);
    expect(seen.at(-1)).toBe("POST /apis/authentication.k8s.io/v1/selfsubjectreviews");
  });

  it("a remote that does not answer", async () => {
    const result = await checkToken({ clusterName: "cluster2", server: "https://127.0.0.1:1", caPem }, "works");
    expect(result).toMatchObject({ kind: "failed", failure: { reason: "RemoteUnreachable" } });
  });
});
