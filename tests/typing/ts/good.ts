// A TypeScript client of the Python typed example server (examples/typed/server.py), typed only
// by the declarations capnweb_codegen generated from the Python Protocols (stubs/ts).
// Usage: node --import ./setup.mjs build/good.js ws://127.0.0.1:PORT/rpc

import { newWebSocketRpcSession, type RpcStub } from "capnweb";
import type { Api, Profile, Stats } from "../../../stubs/ts/examples_typed_api.js";

const url = process.argv[2];
if (url === undefined) throw new Error("usage: good.js ws://127.0.0.1:PORT/rpc");

const api: RpcStub<Api> = newWebSocketRpcSession<Api>(url);

// One round trip each: calls pipelined on the results of calls and on properties.
const name: string = await api.user("ann").profile.name;
const chained: number = await api.square(api.square(api.square(2)));
const visits: number = await api.user("ann").visits().increment(3);

const profile: Profile = await api.user("ann").setBio("likes types");
const missing: Profile | null = await api.find("nobody");
const squares: number[] = await api.fibonacci(6).map((x) => api.square(x));
const names: string[] = await api.userNames("desc");
const counter = api.makeCounter(10);
const next: number = await counter.increment(5);
const value: number = await counter.value;
const called: number = await api.callBack((x: number) => x * 3, 7);
const stats: Stats = await api.stats();

console.log(
  JSON.stringify({ name, chained, visits, bio: profile.bio, missing, squares, names, next, value, called, stats }),
);
api[Symbol.dispose]();
