// Package dbprovisioner makes Autonomous Database accounts and roles follow
// IAM group membership, through ORDS REST-enabled SQL (internal/ords). It
// replaces a function that built SQL from raw names, created password users
// whose passwords were thrown away and dropped users on the first event.
//
// For each configured database (DatabaseConfig) the service runs one durable
// consumer ("dbprovisioner-<database>") on the events of the database's
// identity domain, coalesced per user, and reconciles the user the event
// names. Every reconcile is level-triggered: it reads the user's groups from
// the domain and the account's state from DBA_USERS and DBA_ROLE_PRIVS (with
// bind variables), plans the difference (Mapping.PlanUser) and runs only the
// statements needed, so replayed or reordered events change nothing more.
// Every identifier goes through ords.Ident and every IAM name through
// ords.GlobalPrincipal/GlobalGroup before it reaches SQL; a name that cannot
// be a safe identifier is dead-lettered with the reason and nothing runs.
// Accounts iamflow did not create (another external_name, or a password
// account) are never touched. Each statement run is an audit record in
// IAM_AUDIT; statements in flight per database are bounded
// (max_concurrency), since ORDS on Autonomous Database has a small pool.
//
// Replicas of the service share each database's consumer and take turns on
// each account: an account (a shared schema, a global role) is read,
// planned and changed under its lease in the KV bucket
// iamflow_dbprovisioner_leases (internal/lease), so two replicas never act
// on one catalog read. An IAM user's entry in the account book (which
// userName its account was made for) has a lease of its own, held from the
// read of the book and the user to the write of the book, so a replica with
// a read from before a rename cannot make the old name's account after
// another has synced the new one. A replica that cannot get a lease in time retries
// the event shortly; the lease of one that died is taken over after its
// TTL. A CREATE USER refused with ORA-01920 (made meanwhile by someone who
// takes no lease) is read and planned again at once.
//
// A full reconcile (scheduled, at start, or through the admin API, with
// dry_run) covers every member of every mapped group and every account
// iamflow created, so users who left every group while iamflow was not
// listening are locked too. In shared and global_role modes the objects are
// per group and are ensured by reconciles and group events.
package dbprovisioner
