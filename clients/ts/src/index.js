// Tessera TypeScript/JavaScript client: the generated service descriptors (gen/) over a gRPC transport,
// plus the two things every caller needs: a bearer token on each call and a request id.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { randomUUID } from "node:crypto";

import { AuthService } from "../gen/tessera/auth/v1/auth_pb.js";
import { InventoryService } from "../gen/tessera/inventory/v1/inventory_pb.js";

export { AuthService, InventoryService };
export * from "../gen/tessera/inventory/v1/inventory_pb.js";

/** A transport to `target` ("127.0.0.1:50051" or a URL) that stamps request ids and tokens. */
export function tesseraTransport(target, { token } = {}) {
  const baseUrl = target.includes("://") ? target : `http://${target}`;
  const metadata = (next) => async (req) => {
    if (!req.header.has("x-request-id")) req.header.set("x-request-id", randomUUID());
    const bearer = typeof token === "function" ? await token() : token;
    if (bearer) req.header.set("authorization", `Bearer ${bearer}`);
    return next(req);
  };
  return createGrpcTransport({ baseUrl, interceptors: [metadata] });
}

/** An AuthService client; `login` returns a function that yields a fresh access token. */
export function authClient(target) {
  const client = createClient(AuthService, tesseraTransport(target));
  return {
    raw: client,
    async login(username, password) {
      let response = await client.token({ grant: { case: "password", value: { username, password } } });
      let expiresAt = Date.now() + Number(response.expiresIn) * 1000;
      return async () => {
        // Refresh a little before expiry, with the single-use refresh token the last answer carried.
        if (Date.now() > expiresAt - 30_000) {
          response = await client.token({
            grant: { case: "refreshToken", value: { refreshToken: response.refreshToken } },
          });
          expiresAt = Date.now() + Number(response.expiresIn) * 1000;
        }
        return response.accessToken;
      };
    },
  };
}

/** An InventoryService client calling with the token that `token()` yields. */
export function inventoryClient(target, token) {
  return createClient(InventoryService, tesseraTransport(target, { token }));
}
