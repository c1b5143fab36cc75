package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/adshao/go-binance/v2/common"

	"github.com/marginwatch/marginwatch/exchanges"
)

// Binance error codes the adapter acts on.
const (
	codeTooManyRequests = -1003
	codeTimestamp       = -1021 // timestamp outside recvWindow: our clock drifted
	codeBadSignature    = -1022 // the secret does not match the key
	codeInvalidSymbol   = -1121 // a symbol Binance does not list (any more)
	codeInvalidKeyID    = -2008
	codeRejectedMBXKey  = -2014 // API-key format invalid
	codeInvalidKey      = -2015 // invalid API-key, IP, or permissions for action
)

// KeyError is a problem with the account's API key: invalid, revoked,
// missing a permission, bound to other IPs, or paired with the wrong secret.
// It wraps exchanges.ErrPermanent. Its text says how to fix it and never
// holds the key or the secret.
type KeyError struct {
	Account string
	Code    int64 // Binance's error code, 0 for a bare HTTP 401
	Msg     string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("account %s: Binance rejected the API key (%s): check that api_key and api_secret belong together, that the key was not deleted, that \"Enable Reading\" is on and, if the key is restricted to IPs, that this host's IP is listed, in Binance API Management", e.Account, e.Msg)
}

// Unwrap makes errors.Is(err, exchanges.ErrPermanent) true.
func (e *KeyError) Unwrap() error { return exchanges.ErrPermanent }

// refusal is a key (or key configuration) that marginwatch refuses for
// good: its text names the problem and ends with the fix, and it wraps
// exchanges.ErrPermanent without "%w" appending the sentinel's text (": permanent
// exchange error") after the fix, where the user would read it last.
type refusal struct{ msg string }

func (e *refusal) Error() string { return e.msg }

// Unwrap makes errors.Is(err, exchanges.ErrPermanent) true.
func (e *refusal) Unwrap() error { return exchanges.ErrPermanent }

// refuse is a refusal with fmt.Sprintf(format, args...) as its text.
func refuse(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// APIError is an error response from Binance that is neither a key problem
// nor a rate limit: transient for the caller.
type APIError struct {
	Status int
	Code   int64
	Msg    string
}

func (e *APIError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("binance error %d (HTTP %d): %s", e.Code, e.Status, e.Msg)
	}
	return fmt.Sprintf("binance HTTP %d: %s", e.Status, e.Msg)
}

// classify turns what a go-binance call returned into the adapter's error.
// op names the request ("GET /fapi/v2/account"); status is the HTTP status
// the transport saw (0 when no response came).
func (e *Exchange) classify(op string, status int, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, unwrapURL(err))
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return fmt.Errorf("%s: %w", op, rl)
	}
	var ae *common.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.IsValid() && isKeyCode(ae.Code), status == http.StatusUnauthorized:
			msg := "HTTP 401"
			if ae.IsValid() {
				msg = fmt.Sprintf("code %d, %q", ae.Code, ae.Message)
			}
			return fmt.Errorf("%s: %w", op, &KeyError{Account: e.name, Code: ae.Code, Msg: msg})
		case !ae.IsValid():
			// A proxy's or CDN's HTML page, or an empty body: the body
			// says nothing useful and may be long; the status says enough.
			return fmt.Errorf("%s: %w", op, &APIError{Status: status, Msg: "response is not Binance JSON (an HTML error page or a proxy in between?)"})
		default:
			return fmt.Errorf("%s: %w", op, &APIError{Status: status, Code: ae.Code, Msg: ae.Message})
		}
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return fmt.Errorf("%s: malformed response from Binance: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, unwrapURL(err))
}

func isKeyCode(c int64) bool {
	switch c {
	case codeBadSignature, codeInvalidKeyID, codeRejectedMBXKey, codeInvalidKey:
		return true
	}
	return false
}

// unwrapURL drops the request URL that net/http puts in its errors: it holds
// the signed query string, which is noise in a log line.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiCode returns the Binance error code in err, or 0.
func apiCode(err error) int64 {
	var ae *common.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// isKeyOrCtx reports whether err must fail the whole Snapshot even from an
// optional refresh: a key problem, or the caller giving up.
func isKeyOrCtx(ctx context.Context, err error) bool {
	var ke *KeyError
	return errors.As(err, &ke) || ctx.Err() != nil
}
