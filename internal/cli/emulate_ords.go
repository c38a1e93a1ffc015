package cli

import (
	"context"
	"fmt"

	"github.com/iamflow/iamflow/emulator/ords"
)

// runEmulateORDS is `iamflow emulate ords [flags] ALIAS...`: one emulated
// ORDS serving a REST-enabled schema per alias, until ctx ends.
func runEmulateORDS(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "emulate ords")
	addr := fs.String("addr", "127.0.0.1:9103", "address to serve every database on (/ords/<alias>/...)")
	clientID := fs.String("client-id", "iamflow", "ORDS OAuth client id accepted by every database")
	clientSecret := fs.String("client-secret", "", "secret reference for the OAuth client secret (default: generated and printed)")
	seedFile := fs.String("seed", "", "YAML or JSON file of roles and users to load (databases[].alias, roles, users)")
	poolSize := fs.Int("pool-size", 2, "connections per database; more /_/sql requests at once get 503, as on Autonomous Database")
	poolWait := fs.Duration("pool-wait", 0, "how long a request waits for a free connection before the 503")
	if err := parse(fs, args); err != nil {
		return err
	}
	aliases := fs.Args()
	if len(aliases) == 0 {
		return fmt.Errorf("%w: name at least one database alias (e.g. db1)", errUsage)
	}
	secretText, shown, err := emulatorSecret(ctx, *clientSecret)
	if err != nil {
		return err
	}
	cfg := ords.Config{}
	for _, a := range aliases {
		cfg.Databases = append(cfg.Databases, ords.Database{
			Alias: a, ClientID: *clientID, ClientSecret: secretText, PoolSize: *poolSize, PoolWait: *poolWait,
		})
	}
	emu, err := ords.New(cfg, ords.WithLogger(newCLILogger(e).With("emulator", "ords")))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer emu.Close()
	if *seedFile != "" {
		if err := emu.SeedFile(*seedFile); err != nil {
			return err
		}
	}
	if err := emu.Start(*addr); err != nil {
		return err
	}
	for _, a := range aliases {
		fmt.Fprintf(e.stdout, "ords database %-8s %s   (%d users, %d roles)\n", a, emu.BaseURL(a), len(emu.Users(a)), len(emu.Roles(a)))
	}
	fmt.Fprintf(e.stdout, "OAuth client: id %q secret %q; what the databases hold: %s/_emulator/users?db=<alias>; Ctrl-C stops.\n",
		*clientID, shown, emu.URL())
	<-ctx.Done()
	return nil
}
