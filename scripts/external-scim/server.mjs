// A SCIM 2.0 server for iamflow's interop tests, built from code iamflow did
// not write: SCIMMY (https://github.com/scimmyjs/scimmy) parses and answers
// every request (filters, attributes, sorting, paging, PATCH, discovery,
// errors) and scimmy-routers serves it over Express 5. This file only keeps
// the resources in memory:
//
//   - ids are random UUIDs; userName and displayName are unique
//     (case-insensitive, 409 uniqueness);
//   - a user's groups are computed from the groups' members;
//   - deleting a user does NOT remove it from groups (many servers do not
//     cascade; iamflow must remove such members itself);
//   - users have the enterprise extension, and no Oracle extension.
//
// Run: IAMFLOW_SCIM_TOKEN=... node server.mjs [port]
// It listens on 127.0.0.1 (port 0: the system picks one) and prints one JSON
// line, {"url":"http://127.0.0.1:PORT","base":"/scim/v2"}, when it is ready.
// Requests need "Authorization: Bearer $IAMFLOW_SCIM_TOKEN".
import {randomUUID} from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const token = process.env.IAMFLOW_SCIM_TOKEN;
if (!token) {
    console.error("IAMFLOW_SCIM_TOKEN is not set");
    process.exit(2);
}
const base = "/scim/v2";
const users = new Map();
const groups = new Map();

const now = () => new Date().toISOString();
const notFound = (id) => new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);
const conflict = (what) => new SCIMMY.Types.Error(409, "uniqueness", `${what} is already in use`);

function userOut(u) {
    const memberOf = [...groups.values()]
        .filter((g) => (g.members ?? []).some((m) => m.value === u.id))
        .map((g) => ({value: g.id, display: g.displayName, type: "direct"}));
    return {...u, groups: memberOf};
}

function select(resource, all) {
    if (resource.id) {
        const found = all.find((r) => r.id === resource.id);
        if (!found) throw notFound(resource.id);
        return found;
    }
    return resource.filter ? resource.filter.match(all) : all;
}

// write stores a resource, created when the request had no id.
function write(store, key, label, resource, instance) {
    const value = String(instance[key] ?? "").toLowerCase();
    for (const other of store.values()) {
        if (other.id !== resource.id && String(other[key] ?? "").toLowerCase() === value) throw conflict(`${label} ${instance[key]}`);
    }
    const plain = JSON.parse(JSON.stringify(instance));
    delete plain.groups;
    if (resource.id) {
        const old = store.get(resource.id);
        if (!old) throw notFound(resource.id);
        const next = {...plain, id: resource.id, meta: {created: old.meta.created, lastModified: now()}};
        store.set(resource.id, next);
        return next;
    }
    const id = randomUUID();
    const next = {...plain, id, meta: {created: now(), lastModified: now()}};
    store.set(id, next);
    return next;
}

SCIMMY.Resources.declare(SCIMMY.Resources.User).extend(SCIMMY.Schemas.EnterpriseUser, false)
    .egress((resource) => {
        const out = select(resource, [...users.values()].map(userOut));
        return out;
    })
    .ingress((resource, instance) => userOut(write(users, "userName", "userName", resource, instance)))
    .degress((resource) => {
        if (!users.delete(resource.id)) throw notFound(resource.id);
    });

SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .egress((resource) => select(resource, [...groups.values()]))
    .ingress((resource, instance) => write(groups, "displayName", "displayName", resource, instance))
    .degress((resource) => {
        if (!groups.delete(resource.id)) throw notFound(resource.id);
    });

const app = express();
app.use(base, new SCIMMYRouters({
    type: "bearer",
    docUri: "https://github.com/scimmyjs/scimmy-routers",
    handler: (req) => {
        if (req.header("Authorization") !== `Bearer ${token}`) throw new Error("Authorization failed");
        return "iamflow";
    },
}));

const server = app.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
    const {port} = server.address();
    process.stdout.write(JSON.stringify({url: `http://127.0.0.1:${port}`, base}) + "\n");
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// Exit with the test process that started us: its end closes our stdin.
process.stdin.on("end", stop);
process.stdin.resume();
