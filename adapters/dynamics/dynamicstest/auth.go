package dynamicstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

func oauthError(status int, code, desc string) *response {
	b, _ := json.Marshal(map[string]any{"error": code, "error_description": desc})
	return (&response{status: status, body: b}).set("Content-Type", "application/json; charset=utf-8")
}

// handleToken answers the Entra ID v2.0 token endpoint for the client
// credentials grant. s.mu is held.
func (s *Server) handleToken(r *http.Request, body []byte) *response {
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if !strings.EqualFold(tenant, s.opts.Tenant) {
		return oauthError(http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant '"+tenant+"' not found.")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return oauthError(http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
	}
	if g := form.Get("grant_type"); g != "client_credentials" {
		if g == "" {
			return oauthError(http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		}
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type '"+g+"'.")
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if id == "" || (s.opts.ClientID != "" && id != s.opts.ClientID) {
		return oauthError(http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier '"+id+"' was not found in the directory.")
	}
	if secret == "" || (s.opts.ClientSecret != "" && secret != s.opts.ClientSecret) {
		return oauthError(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	}
	scope := form.Get("scope")
	want := s.URL() + "/.default"
	if !strings.EqualFold(scope, want) && !strings.EqualFold(scope, s.URL()+"//.default") {
		return oauthError(http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope "+scope+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := "eyJ0eXAiOiJKV1QifQ." + hex.EncodeToString(b[:])
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenTTL)
	return jsonResponse(http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     int(s.opts.TokenTTL.Seconds()) - 1,
		"ext_expires_in": int(s.opts.TokenTTL.Seconds()) - 1,
		"access_token":   tok,
	})
}

// authorize checks an Authorization header; nil means the request may
// proceed. s.mu is held.
func (s *Server) authorize(h string) *response {
	challenge := `Bearer authorization_uri="https://login.microsoftonline.com/` + s.opts.Tenant + `/oauth2/authorize", resource_id="` + s.URL() + `"`
	tok, ok := strings.CutPrefix(h, "Bearer ")
	exp, known := s.tokens[strings.TrimSpace(tok)]
	switch {
	case !ok || !known:
		return odataError(http.StatusUnauthorized, codeAuth, "The user is not authenticated: a valid bearer token is required.").
			set("WWW-Authenticate", challenge)
	case !s.opts.Now().Before(exp):
		return odataError(http.StatusUnauthorized, codeAuth, "The access token has expired.").
			set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The access token has expired", `+strings.TrimPrefix(challenge, "Bearer "))
	}
	return nil
}
