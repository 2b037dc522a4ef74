package salesforcetest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// oauthError is the body of a failed token request.
func oauthError(code, desc string) *response {
	return jsonResp(http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

// handleToken serves POST /services/oauth2/token. s.mu is held.
func (s *Server) handleToken(r *http.Request, body []byte) *response {
	if r.Method != http.MethodPost {
		return oauthError("invalid_request", "must use HTTP POST")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return oauthError("invalid_request", "malformed form body")
	}
	switch form.Get("grant_type") {
	case "client_credentials":
		id, secret := form.Get("client_id"), form.Get("client_secret")
		if u, p, ok := r.BasicAuth(); ok {
			id, secret = u, p
		}
		if id == "" {
			return oauthError("invalid_client_id", "client identifier invalid")
		}
		if s.opts.ClientID != "" && (id != s.opts.ClientID || secret != s.opts.ClientSecret) {
			return oauthError("invalid_client", "invalid client credentials")
		}
		return s.tokenResponse(s.userID, "api")
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		userID, r := s.verifyJWT(form.Get("assertion"))
		if r != nil {
			return r
		}
		return s.tokenResponse(userID, "api")
	case "":
		return oauthError("unsupported_grant_type", "grant type not supported")
	default:
		return oauthError("unsupported_grant_type", "grant type not supported")
	}
}

func (s *Server) tokenResponse(userID, scope string) *response {
	tok := s.newToken(userID)
	issued := strconv.FormatInt(s.opts.Now().UnixMilli(), 10)
	id := s.URL() + "/id/" + s.orgID + "/" + userID
	mac := hmac.New(sha256.New, []byte(s.opts.ClientSecret))
	mac.Write([]byte(id + issued))
	return jsonResp(http.StatusOK, map[string]string{
		"access_token": tok,
		"instance_url": s.URL(),
		"id":           id,
		"token_type":   "Bearer",
		"issued_at":    issued,
		"signature":    base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		"scope":        scope,
	})
}

// newToken issues an access token for userID. s.mu is held.
func (s *Server) newToken(userID string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := s.orgID[:15] + "!" + base64.RawURLEncoding.EncodeToString(b[:])
	s.tokens[tok] = token{userID: userID, expires: s.opts.Now().Add(s.opts.TokenTTL)}
	return tok
}

// authorize checks an Authorization header and returns the user it runs as.
func (s *Server) authorize(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
		return "", false
	}
	t, ok := s.tokens[strings.TrimSpace(tok)]
	if !ok || !s.opts.Now().Before(t.expires) {
		return "", false
	}
	return t.userID, true
}

// verifyJWT checks a JWT bearer assertion and returns the user it names.
func (s *Server) verifyJWT(assertion string) (string, *response) {
	if s.opts.JWTPublicKey == nil {
		return "", oauthError("unsupported_grant_type", "grant type not supported")
	}
	invalid := oauthError("invalid_grant", "invalid assertion")
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", invalid
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", invalid
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "RS256" {
		return "", invalid
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(s.opts.JWTPublicKey, crypto.SHA256, sum[:], sig) != nil {
		return "", invalid
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp json.Number     `json:"exp"`
	}
	d := json.NewDecoder(strings.NewReader(string(pb)))
	d.UseNumber()
	if d.Decode(&claims) != nil {
		return "", invalid
	}
	if s.opts.ClientID != "" && claims.Iss != s.opts.ClientID || claims.Iss == "" {
		return "", oauthError("invalid_client_id", "client identifier invalid")
	}
	var auds []string
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil {
		auds = []string{one}
	} else if json.Unmarshal(claims.Aud, &auds) != nil {
		return "", oauthError("invalid_grant", "audience is invalid")
	}
	audOK := false
	for _, a := range auds {
		a = strings.TrimSuffix(a, "/")
		if a == s.URL() || a == "https://login.salesforce.com" || a == "https://test.salesforce.com" {
			audOK = true
		}
	}
	if !audOK {
		return "", oauthError("invalid_grant", "audience is invalid")
	}
	exp, err := claims.Exp.Int64()
	now := s.opts.Now()
	if err != nil || !time.Unix(exp, 0).After(now) {
		return "", oauthError("invalid_grant", "expired authorization code")
	}
	if time.Unix(exp, 0).After(now.Add(3 * time.Minute)) {
		return "", oauthError("invalid_grant", "invalid assertion: exp is more than 3 minutes in the future")
	}
	for _, u := range s.db.all("User") {
		if name, _ := u["Username"].(string); name != "" && strings.EqualFold(name, claims.Sub) {
			if u["IsActive"] == false {
				return "", oauthError("invalid_grant", "inactive user")
			}
			return u["Id"].(string), nil
		}
	}
	return "", oauthError("invalid_grant", "user hasn't approved this consumer")
}
