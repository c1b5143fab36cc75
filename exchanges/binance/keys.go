package binance

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/adshao/go-binance/v2/common"
)

// keyTypeOf tells the API key's type from its secret: a PEM private key is
// an Ed25519 or RSA key (Binance's key generator writes PKCS#8, which is
// what go-binance's signers parse); anything else is an HMAC secret. The
// errors never quote the secret.
func keyTypeOf(secret string) (string, error) {
	if !strings.Contains(secret, "-----BEGIN") {
		return common.KeyTypeHmac, nil
	}
	block, _ := pem.Decode([]byte(secret))
	if block == nil {
		return "", errors.New("it looks like a PEM private key but does not decode: paste the whole file Binance's key generator wrote, BEGIN and END lines included")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("it is a PEM %q block, not an unencrypted PKCS#8 private key (\"BEGIN PRIVATE KEY\"): convert it with `openssl pkcs8 -topk8 -nocrypt -in private.pem`", block.Type)
	}
	switch k.(type) {
	case ed25519.PrivateKey:
		return common.KeyTypeEd25519, nil
	case *rsa.PrivateKey:
		return common.KeyTypeRsa, nil
	}
	return "", fmt.Errorf("it is a %T private key; Binance API keys are HMAC, Ed25519 or RSA", k)
}

// loopback reports whether host (no port) is this machine: localhost or an
// address in 127.0.0.0/8 or ::1.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
