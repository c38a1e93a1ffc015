// Package ords is an in-memory emulator of Oracle REST Data Services'
// REST-enabled SQL service for one or more Autonomous Database schema
// aliases, faithful enough over HTTP for iamflow's internal/ords client and
// the dbprovisioner service (sources: docs/oci-sources.md §6):
//
//   - POST /ords/<alias>/oauth/token: OAuth client credentials (oauth.go);
//   - POST /ords/<alias>/_/sql: application/json ({statementText, offset,
//     limit, binds}) or application/sql (a script), answered in ORDS's
//     {"env":{...},"items":[...]} shape (server.go, response.go);
//   - an in-memory catalog of users, roles, role grants and the CREATE
//     SESSION privilege (catalog.go), changed by the DDL and read through
//     DBA_USERS, DBA_ROLES, DBA_ROLE_PRIVS and DBA_SYS_PRIVS (views.go),
//     parsed by a small Oracle-like tokenizer and parser (lexer.go,
//     parser.go, script.go);
//   - a connection pool per database (HTTP 503 when exhausted) and faults on
//     demand (faults.go), controlled from Config, Go, or the /_emulator/
//     endpoints (control.go); seed files (seed.go).
//
// Faithful to docs/oci-sources.md §6 (documented facts): the endpoints and URL layout; the
// token request (Basic client_id:secret, grant_type=client_credentials) and
// answer {"access_token","token_type":"bearer","expires_in":3600}; Bearer
// tokens and Basic schema credentials on /_/sql; the 401 body
// {"code":"Unauthorized","message":"Unauthorized","type":"tag:oracle.com,2020:error/Unauthorized","instance":"tag:oracle.com,2020:ecid/..."};
// the JSON request fields and the positional bind form
// {"index":1,"data_type":"VARCHAR2","value":...}; the response and
// resultSet fields (statementId, statementType "query", statementPos,
// statementText, response, result, metadata with columnName,
// jsonColumnName (lower case), columnTypeName, columnClassName, precision,
// scale, isNullable; items, hasMore, limit, offset, count); default limit
// 10000; errorCode (number) and errorDetails ("ORA-NNNNN: text") on failed
// statements; the IDENTIFIED GLOBALLY AS 'IAM_PRINCIPAL_NAME=dom/user' and
// 'IAM_GROUP_NAME=dom/group' forms. Oracle behaviour followed: keywords and
// unquoted identifiers case-insensitive (stored upper-case), quoted
// identifiers case-preserved, a doubled single quote escaping one, users and roles in one namespace,
// the ORA codes and texts (00054, 00900, 00904, 00911, 00922, 00933, 00942,
// 00972, 00990, 01008, 01027, 01031, 01740, 01741, 01756, 01918-01921,
// 01951, 01952), re-granting a granted role succeeds, DDL commits per
// statement, LIKE with % and _ and no default escape, NULL matches nothing.
//
// Inferred (not found verbatim; each also noted at the code):
//
//   - statementType "ddl" for DDL with SQLcl-style feedback in response[]
//     ("\nUser X created.\n\n", "\nGrant succeeded.\n\n"); failed items also
//     carry errorLine, errorColumn, errorMessage and a SQLcl error report in
//     response[]; the HTTP status stays 200 when statements fail;
//   - a script runs every statement in order and continues after a failing
//     one (SQLcl's default WHENEVER SQLERROR CONTINUE), one item each;
//     statementText in a JSON body is also a script;
//   - GRANT or REVOKE to a missing user is ORA-01918 as the contract says
//     (the database itself says ORA-01917 there); a missing role ORA-01919;
//   - HTTP errors other than 401 use the same body shape with their own
//     code: 400 BadRequest (bad JSON, no statementText, negative
//     offset/limit), 404 NotFound (unknown alias or path), 405, 413,
//     415 UnsupportedMediaType (Content-Type not application/json or
//     application/sql), 503 ServiceUnavailable with Retry-After: 1 for an
//     exhausted pool, an outage and injected errors; wrong client
//     credentials at the token endpoint get the 401 body too, a wrong
//     grant_type 400 {"error":"unsupported_grant_type"};
//   - row order without ORDER BY is the view's key order (username; grantee
//     then role), so paging is stable; CREATED is an RFC 3339 UTC string;
//   - error bodies are sent as application/problem+json (ORDS's RFC 7807
//     style); the 503 message reads "The database connection pool is not
//     available: <why>. This can occur if the database is unavailable, the
//     maximum number of sessions has been reached or the pool is not
//     correctly configured.";
//   - token requests take no pool connection.
//
// Not emulated: PL/SQL, DML, other views or privileges, SQL*Plus commands,
// responseFormat, roles granted to roles, password checks for IDENTIFIED BY.
// Such statements fail with ORA-00900 (or the parse error Oracle would give)
// and change nothing.
package ords
