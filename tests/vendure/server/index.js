// A real Vendure for orderbridge's connector tests and push benchmark.
//
// Admin API only, storage in one sql.js (SQLite compiled to wasm, nothing to compile at
// install) file, bound to 127.0.0.1. Everything that varies per run comes from the
// environment, set by tests/support/vendure.py:
//   VENDURE_PORT       port to listen on (127.0.0.1 only)
//   VENDURE_DB_FILE    the sql.js database file (created with the schema when missing)
//   VENDURE_ADMIN_USER / VENDURE_ADMIN_PASSWORD   the superadmin
//   VENDURE_EXIT_WITH_STDIN  "true": shut down when stdin closes. The harness keeps a pipe
//                      open to it, so that a test run or benchmark that is killed (no
//                      teardown) does not leave this server running.
//   VENDURE_DB_AUTOSAVE  "false": keep changes in memory only. sql.js rewrites the whole
//                      file after every write otherwise, which tests and the benchmark do
//                      not need (they start from a copy of a seeded file and discard it).
// The Order custom field `externalId` (unique) is where a connector records orderbridge's
// order id, so that a retried push finds the order instead of creating a second one.
'use strict';

process.env.VENDURE_DISABLE_TELEMETRY = 'true';

const { bootstrap, DefaultLogger, LogLevel } = require('@vendure/core');

if (process.env.VENDURE_EXIT_WITH_STDIN === 'true') {
    process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
    process.stdin.resume();
}

function required(name) {
    const value = process.env[name];
    if (!value) {
        console.error(`${name} is not set`);
        process.exit(2);
    }
    return value;
}

const config = {
    apiOptions: {
        hostname: '127.0.0.1',
        port: Number(required('VENDURE_PORT')),
        adminApiPath: 'admin-api',
        shopApiPath: 'shop-api',
    },
    authOptions: {
        tokenMethod: 'bearer',
        requireVerification: false,
        superadminCredentials: {
            identifier: required('VENDURE_ADMIN_USER'),
            password: required('VENDURE_ADMIN_PASSWORD'),
        },
    },
    dbConnectionOptions: {
        type: 'sqljs',
        location: required('VENDURE_DB_FILE'),
        autoSave: process.env.VENDURE_DB_AUTOSAVE !== 'false',
        synchronize: true,
        logging: false,
    },
    paymentOptions: { paymentMethodHandlers: [] },
    customFields: {
        Order: [
            { name: 'externalId', type: 'string', unique: true, nullable: true, public: false },
        ],
    },
    logger: new DefaultLogger({ level: LogLevel.Warn }),
    plugins: [],
};

bootstrap(config).catch((error) => {
    console.error(error);
    process.exit(1);
});
