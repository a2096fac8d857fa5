package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// The client's settings: where the coordinator's HTTP API is and the API
// key to show it. Each comes from, in order of precedence, a flag
// (--coordinator, --api-key), the environment (BELUGA_COORDINATOR,
// BELUGA_API_KEY) or the config file (--config, else
// $XDG_CONFIG_HOME/beluga/client.json — os.UserConfigDir's directory on
// each system):
//
//	{"coordinator": "http://127.0.0.1:8700", "api_key": "bk_…"}
const (
	envCoordinator = "BELUGA_COORDINATOR"
	envAPIKey      = "BELUGA_API_KEY"
)

// clientConfig is the config file's content.
type clientConfig struct {
	Coordinator string `json:"coordinator,omitempty"`
	APIKey      string `json:"api_key,omitempty"`
}

// clientSettings are the resolved settings and where each came from.
type clientSettings struct {
	Coordinator, CoordinatorFrom string
	APIKey, APIKeyFrom           string
	// ConfigPath is the config file consulted (it may not exist).
	ConfigPath string
	// Warnings for the user (a config file others can read).
	Warnings []string
}

// defaultClientConfigPath is $XDG_CONFIG_HOME/beluga/client.json (or the
// system's user config directory); "" if there is none.
func defaultClientConfigPath(getenv func(string) string) string {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return ""
		}
		dir = d
	}
	return filepath.Join(dir, "beluga", "client.json")
}

// loadClientConfig reads the config file at path; a missing file is an
// empty config unless the user named it (explicit).
func loadClientConfig(path string, explicit bool) (clientConfig, []string, error) {
	var c clientConfig
	if path == "" {
		return c, nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return c, nil, nil
	}
	if err != nil {
		return c, nil, fmt.Errorf("read the client config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, nil, fmt.Errorf("client config file %s is not valid: %s (expected {\"coordinator\": \"http://host:port\", \"api_key\": \"…\"})", path, jsonProblem(err))
	}
	var warn []string
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && c.APIKey != "" {
		warn = append(warn, fmt.Sprintf("%s holds an API key and others can read it: chmod 600 %s", path, path))
	}
	return c, warn, nil
}

// jsonProblem says what is wrong with a JSON document without Go type
// names.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%q must be a %s", te.Field, jsonKind(te.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown setting " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "int", "int64", "int32", "uint64", "float64":
		return "number"
	case "bool":
		return "true or false"
	}
	return "value of another kind"
}

// resolveClient applies the precedence flag > environment > file.
func resolveClient(flagCoord, flagKey, flagConfig string, getenv func(string) string) (clientSettings, error) {
	s := clientSettings{ConfigPath: flagConfig}
	if s.ConfigPath == "" {
		s.ConfigPath = defaultClientConfigPath(getenv)
	}
	file, warn, err := loadClientConfig(s.ConfigPath, flagConfig != "")
	if err != nil {
		return s, err
	}
	s.Warnings = warn
	pick := func(flag, flagName, env, envName, fromFile string) (string, string) {
		switch {
		case flag != "":
			return flag, "flag " + flagName
		case env != "":
			return env, "environment " + envName
		case fromFile != "":
			return fromFile, "config file " + s.ConfigPath
		}
		return "", ""
	}
	s.Coordinator, s.CoordinatorFrom = pick(flagCoord, "--coordinator", getenv(envCoordinator), envCoordinator, file.Coordinator)
	s.APIKey, s.APIKeyFrom = pick(flagKey, "--api-key", getenv(envAPIKey), envAPIKey, file.APIKey)
	if s.Coordinator != "" {
		u, err := normalizeCoordinatorURL(s.Coordinator)
		if err != nil {
			return s, fmt.Errorf("coordinator address %q (from %s): %w", s.Coordinator, s.CoordinatorFrom, err)
		}
		s.Coordinator = u
	}
	return s, nil
}

// normalizeCoordinatorURL accepts "host:port" or an http(s) URL and
// returns the URL without a trailing slash.
func normalizeCoordinatorURL(raw string) (string, error) {
	if strings.HasPrefix(raw, "/ip4/") || strings.HasPrefix(raw, "/ip6/") || strings.HasPrefix(raw, "/dns") {
		return "", errors.New("that is the coordinator's libp2p address (for solvers and verifiers); the client talks to its HTTP API, the address `beluga coordinator --listen` serves (e.g. http://127.0.0.1:8700)")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", errors.New("not a URL such as http://127.0.0.1:8700")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q: use http:// or https://", u.Scheme)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// need checks that the settings name a coordinator (and a key, if
// withKey).
func (s clientSettings) need(withKey bool) error {
	where := "the config file"
	if s.ConfigPath != "" {
		where = s.ConfigPath
	}
	if s.Coordinator == "" {
		return fmt.Errorf("no coordinator address: pass --coordinator http://HOST:PORT, set %s, or run `beluga job config set --coordinator …` (writes %s)", envCoordinator, where)
	}
	if withKey && s.APIKey == "" {
		return fmt.Errorf("no API key: pass --api-key, set %s, or run `beluga job config set --api-key …` (writes %s); an operator issues client keys (POST /v1/keys)", envAPIKey, where)
	}
	return nil
}

// saveClientConfig writes c to path, readable by the user only.
func saveClientConfig(path string, c clientConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the config directory: %w", err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the config file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the config file: %w", err)
	}
	return nil
}
