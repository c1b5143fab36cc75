package pace

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(3, time.Second)
		start := time.Now()
		for range 3 {
			if err := p.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the burst waited %v", d)
		}
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("the fourth attempt came after %v, want 1s", d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := p.Wait(ctx); err != context.DeadlineExceeded {
			t.Errorf("Wait past ctx: %v", err)
		}
		p.Fill()
		before := time.Now()
		for range 3 {
			p.Wait(context.Background())
		}
		if d := time.Since(before); d != 0 {
			t.Errorf("after Fill the burst waited %v", d)
		}
		p.Drain()
		before = time.Now()
		p.Wait(context.Background())
		if d := time.Since(before); d != time.Second {
			t.Errorf("after Drain the attempt came after %v, want 1s", d)
		}
	})
}
