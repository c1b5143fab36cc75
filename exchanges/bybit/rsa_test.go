package bybit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/bybit/bybittest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// TestRSAKey: a self-generated (RSA) key's PEM private key in api_secret
// signs every request as Bybit verifies it (X-BAPI-SIGN-TYPE 2, the
// fake checks with the public key), in PKCS#8 and PKCS#1; a different
// private key is refused as a key problem, permanently.
func TestRSAKey(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		secret string
		ok     bool
	}{
		{"pkcs8", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), true},
		{"pkcs1", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})), true},
		{"another key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := bybittest.NewServer(t, bybittest.Options{RSAPublic: &priv.PublicKey})
			srv.Hedge()
			a := account(srv.URL, false)
			a.APISecret = config.Secret(tc.secret)
			e, err := New(a, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close(); forget(srv.URL) })
			err = e.CheckKey(context.Background())
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckKey: %v", err)
				}
				snap, err := e.Snapshot(context.Background())
				if err != nil || len(snap.Positions) == 0 {
					t.Fatalf("Snapshot: %v, %d positions", err, len(snap.Positions))
				}
				return
			}
			if err == nil || !errors.Is(err, exchanges.ErrPermanent) {
				t.Fatalf("CheckKey with another private key: %v, want a permanent key error", err)
			}
		})
	}
}
