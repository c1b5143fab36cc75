package watcher

import (
	"context"
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
	if w.Config().ChangedOnDisk() {
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
