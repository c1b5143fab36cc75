package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminServerPolicyFollowsReload: a new token on the same address
// takes effect at once; a move serves the new address with its own
// policy, and a client stuck mid-request on the old one (slowloris) does
// not hold the move up for long.
func TestAdminServerPolicyFollowsReload(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &lockedBuffer{}
	a := &adminServer{log: slog.New(slog.NewTextHandler(logs, nil)), failed: func() { t.Error("the admin server failed to start") }}
	a.handler = adminHandler(http.NotFoundHandler(), &fakeControl{}, a.writePolicy, a.log)
	addr := freeAddr(t)
	a.set(ctx, addr, writePolicy{token: "A", loopback: true})
	defer a.close()
	ack := func(addr, token string) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequest("POST", "http://"+addr+alertsPath+"a1b2/ack", strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			if time.Now().After(deadline) {
				t.Fatalf("nobody serves %s: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if c := ack(addr, "A"); c != http.StatusOK {
		t.Errorf("token A: %d", c)
	}
	a.set(ctx, addr, writePolicy{token: "B", loopback: true})
	if c1, c2 := ack(addr, "A"), ack(addr, "B"); c1 != http.StatusUnauthorized || c2 != http.StatusOK {
		t.Errorf("after the token changed to B: A %d, B %d; want 401, 200", c1, c2)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST " + alertsPath + "a1b2/ack HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	addr2 := freeAddr(t)
	start := time.Now()
	a.set(ctx, addr2, writePolicy{loopback: true})
	// Serve gives in-flight requests 5 s; the generous bound is for a busy machine.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the move took %v", d)
	}
	if c := ack(addr2, ""); c != http.StatusOK {
		t.Errorf("the new address without a token: %d", c)
	}
}
