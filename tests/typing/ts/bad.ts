// Wrong uses of the generated declarations: `tsc --noEmit --strict -p tsconfig.bad.json` must
// fail, with the error code written after `expect` on each line.

import { newWebSocketRpcSession } from "capnweb";
import type { Api } from "../../../stubs/ts/examples_typed_api.js";

const api = newWebSocketRpcSession<Api>("ws://127.0.0.1:1/rpc");

await api.square("four"); // expect TS2345: a string where a number is declared
await api.noSuchMethod(); // expect TS2339: not a method of Api
const text: string = await api.square(2); // expect TS2322: the result is a number
await api.user("ann").profile.nmae; // expect TS2339: not a field of Profile
await api.makeCounter(1, 2); // expect TS2554: one optional argument
