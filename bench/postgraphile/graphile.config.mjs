// PostGraphile 5 peer of runledger for the benchmark (issue 6): serves the `public` schema of
// the database named by DATABASE_URL on 127.0.0.1:$PORT, read-only, no GraphiQL/explain/watch.
// Relations come from postgraphile.tags.json5 (runledger's tables have no foreign keys).
//
// Packages are resolved from bench/.peer/node_modules (installed by install.sh), or from
// $PEER_DIR/node_modules when set, so this committed file needs no node_modules beside it.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const peerDir = process.env.PEER_DIR ?? path.join(here, "..", ".peer");
const require = createRequire(path.join(peerDir, "package.json"));

const { PostGraphileAmberPreset } = require("postgraphile/presets/amber");
const { makePgService } = require("postgraphile/adaptors/pg");
const { makePgSmartTagsFromFilePlugin } = require("postgraphile/utils");
const { PostGraphileConnectionFilterPreset } = require("postgraphile-plugin-connection-filter");
// Grouped aggregates (`groupedAggregates`), the peer of runledger's stats queries (issue 18).
const { PgAggregatesPreset } = require("@graphile/pg-aggregates");

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  throw new Error("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/runledger)");
}
const port = Number.parseInt(process.env.PORT ?? "5678", 10);
// Same default as runledger's --db-max-connections (RUNLEDGER_DB_MAX_CONNECTIONS).
const poolMax = Number.parseInt(process.env.PG_POOL_MAX ?? "16", 10);

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset, PgAggregatesPreset],
  plugins: [makePgSmartTagsFromFilePlugin(path.join(here, "postgraphile.tags.json5"))],
  disablePlugins: [
    // Read-only, like the query side of runledger.
    "PgMutationCreatePlugin",
    "PgMutationUpdateDeletePlugin",
    // Filters on attributes and and/or/not only; no filtering through relations.
    "PgConnectionArgFilterBackwardRelationsPlugin",
    "PgConnectionArgFilterForwardRelationsPlugin",
  ],
  pgServices: [
    makePgService({
      connectionString,
      schemas: ["public"],
      poolConfig: { max: poolMax },
      pubsub: false,
    }),
  ],
  schema: {
    // and/or/not: Q5 reads "the tenant's records or global ones".
    connectionFilterLogicalOperators: true,
  },
  grafserv: {
    host: "127.0.0.1",
    port,
    graphqlPath: "/graphql",
    graphiql: false,
    graphqlOverGET: false,
    watch: false,
    websockets: false,
  },
  grafast: {
    explain: false,
  },
};

export default preset;
