package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	bybitapi "github.com/hirokisan/bybit/v2"

	"github.com/marginwatch/marginwatch/exchanges"
)

// Bybit retCodes the adapter acts on (docs/v5/error.mdx). They come with
// HTTP 200.
const (
	codeTimeWindow = 10002
	codeInvalidKey = 10003
	codeBadSign    = 10004
	codeNoPerm     = 10005
	codeIPNotBound = 10010
	codeKeyExpired = 33004
)

// KeyError is a problem with the account's API key that retrying cannot
// fix. It wraps exchanges.ErrPermanent; its text names the fix and never
// holds the key, the secret or a signature.
type KeyError struct {
	Account string
	Code    int
	Msg     string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("account %s: Bybit rejected the API key (retCode %d, %s): %s", e.Account, e.Code, e.Msg, keyFix(e.Code))
}

// Unwrap makes errors.Is(err, exchanges.ErrPermanent) true.
func (e *KeyError) Unwrap() error { return exchanges.ErrPermanent }

func keyFix(code int) string {
	switch code {
	case codeInvalidKey:
		return "check that api_key is right and belongs to this environment (mainnet or testnet: set testnet: true for a testnet key), and that it was not deleted, in Bybit API Management"
	case codeBadSign:
		return "api_secret does not match api_key: paste the secret shown when the key was created (for an RSA key, the PEM private key)"
	case codeNoPerm:
		return "the key lacks a read permission marginwatch needs: give it read-only access to Contract/Derivatives and Wallet (unified account) in Bybit API Management"
	case codeIPNotBound:
		return "the key is bound to other IPs: add this host's public IP to the key in Bybit API Management"
	case codeKeyExpired:
		return "the key has expired: create a new read-only key in Bybit API Management"
	case 401:
		return "check api_key and api_secret"
	}
	return "check the key in Bybit API Management"
}

func isKeyCode(c int) bool {
	switch c {
	case codeInvalidKey, codeBadSign, codeNoPerm, codeIPNotBound, codeKeyExpired:
		return true
	}
	return false
}

// refusal is a key marginwatch refuses for good; it wraps ErrPermanent
// without appending the sentinel's text after the fix.
type refusal struct{ msg string }

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return exchanges.ErrPermanent }

func refuse(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

// APIError is a Bybit error that is neither a key problem nor a rate
// limit: transient for the caller.
type APIError struct {
	Status int
	Code   int
	Msg    string
	Hint   string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("bybit HTTP %d", e.Status)
	if e.Code != 0 {
		s = fmt.Sprintf("bybit retCode %d (HTTP %d)", e.Code, e.Status)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// classify turns what a hirokisan/bybit call returned into the adapter's
// error. op names the request ("GET /v5/position/list"); status is the
// HTTP status the transport saw (0 when no response came).
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
	var er *bybitapi.ErrorResponse
	var rle *bybitapi.RateLimitV5Error
	switch {
	case errors.As(err, &er):
		switch {
		case isKeyCode(er.RetCode):
			return fmt.Errorf("%s: %w", op, &KeyError{Account: e.name, Code: er.RetCode, Msg: fmt.Sprintf("%q", er.RetMsg)})
		case er.RetCode == codeTimeWindow:
			return fmt.Errorf("%s: %w", op, &APIError{Status: status, Code: er.RetCode, Msg: er.RetMsg,
				Hint: "this host's clock is off from Bybit's by more than the 5 s receive window: synchronise it (chrony or systemd-timesyncd); polling goes on"})
		default:
			return fmt.Errorf("%s: %w", op, &APIError{Status: status, Code: er.RetCode, Msg: er.RetMsg})
		}
	case errors.As(err, &rle):
		code, msg := codeRateLimit, "too many visits; no request until the reset time"
		if rle.CommonV5Response != nil && rle.RetCode == codeIPRateLimit {
			code, msg = codeIPRateLimit, "IP rate limit exceeded; no request until the reset time"
		}
		return fmt.Errorf("%s: %w", op, &APIError{Status: status, Code: code, Msg: msg})
	case status >= 300 && status < 400:
		return fmt.Errorf("%s: %w", op, &APIError{Status: status, Msg: "a redirect, not followed (the API key is sent to endpoint only)",
			Hint: "check endpoint: it must be Bybit's API base itself (" + MainnetURL + "), not an address that redirects"})
	case status == 401:
		return fmt.Errorf("%s: %w", op, &KeyError{Account: e.name, Code: 401, Msg: "HTTP 401"})
	case status >= 400:
		return fmt.Errorf("%s: %w", op, &APIError{Status: status, Msg: "not a Bybit answer (an error page or a proxy in between?)"})
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return fmt.Errorf("%s: malformed response from Bybit: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, unwrapURL(err))
}

// unwrapURL drops the request URL net/http puts in its errors.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
