package watcher

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce collects the burst of events one save makes (an editor
// writes, renames, chmods) into one reload.
const reloadDebounce = 300 * time.Millisecond

// watchFiles requests a reload when the config file or a rule file changes,
// including a rule file newly matching a rule_files glob. It watches the
// files' folders, not the files: editors that save by writing a new file and
// renaming it over the old one replace the inode a file watch would follow.
func (w *Watcher) watchFiles(ctx context.Context) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Warn("cannot watch config files; reload with SIGHUP", "err", err)
		return
	}
	defer fw.Close()
	watched := map[string]bool{}
	var files, globs []string
	refresh := func() {
		w.mu.Lock()
		cfg := w.cur.cfg
		w.mu.Unlock()
		files, globs = cfg.Files, cfg.RuleFiles
		dirs := []string{filepath.Dir(cfg.Path)}
		for _, f := range files {
			dirs = append(dirs, filepath.Dir(f))
		}
		for _, g := range globs {
			dirs = append(dirs, filepath.Dir(g))
		}
		for _, d := range dirs {
			if watched[d] {
				continue
			}
			if err := fw.Add(d); err != nil {
				w.log.Warn("cannot watch folder; edits there need SIGHUP", "dir", d, "err", err)
				continue
			}
			watched[d] = true
		}
	}
	refresh()
	if w.changedSince(w.opts.LoadedAt, files, globs) {
		w.log.Info("config or rule file changed during start-up; reloading")
		w.RequestReload()
	}
	relevant := func(name string) bool {
		name = filepath.Clean(name)
		if slices.Contains(files, name) {
			return true
		}
		for _, g := range globs {
			if ok, _ := filepath.Match(g, name); ok {
				return true
			}
		}
		return false
	}

	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			if relevant(ev.Name) {
				debounce = time.After(reloadDebounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			w.log.Warn("config file watch", "err", err)
		case <-debounce:
			debounce = nil
			w.log.Info("config or rule file changed; reloading")
			w.RequestReload()
			// The reload may name other rule files; give it a moment, then
			// watch what the running configuration names.
			select {
			case <-ctx.Done():
				return
			case <-time.After(reloadDebounce):
			}
			refresh()
		}
	}
}

// mtimeSlack covers file systems' coarse modification times.
const mtimeSlack = 2 * time.Second

// changedSince reports whether a config or rule file (one read, or one now
// matching a rule_files glob) was modified, created or removed at or after
// loaded: an edit made while the daemon started, before its watch ran,
// would otherwise be missed until the next one. A needless reload costs
// nothing (alert states carry over).
func (w *Watcher) changedSince(loaded time.Time, files, globs []string) bool {
	if loaded.IsZero() {
		return false
	}
	// File systems stamp with a coarse clock (a tick, or seconds): count a
	// stamp a little before loaded as after it. A needless reload is cheap.
	loaded = loaded.Add(-mtimeSlack)
	check := slices.Clone(files)
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		check = append(check, m...)
	}
	for _, f := range check {
		fi, err := os.Stat(f)
		if err != nil || !fi.ModTime().Before(loaded) || !slices.Contains(files, filepath.Clean(f)) {
			return true
		}
	}
	return false
}
