package config

// Admin configures the admin API on `listen`. Its token is the bearer
// token its writes (silences, acks) need whenever one is set; a `listen`
// other machines can reach needs one (see checkListen).
type Admin struct {
	Token     Secret   `yaml:"token"`
	TokenFile string   `yaml:"token_file"`
	At        Location `yaml:"-"`
}

// tokenSet reports whether an admin token is configured (inline or as a
// file that was read).
func (a *Admin) tokenSet() bool { return a.Token != "" }

// validateAdmin checks the admin section; the token file was read (and its
// problems reported) by readSecrets.
func validateAdmin(a *Admin, c *collector) {
	if a.At.written("token") {
		secretGiven(a.At, "token", a.Token, c)
	}
}
