package setting

import (
	"os"
	"strings"
)

// Secret reads the secret of key name given one of three ways: as is
// (value), in a file (NAME_file: its content without the trailing newline)
// or in an environment variable (NAME_env). An error is a KeyError naming
// the key that failed.
func Secret(name, value, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", Key(name+"_file", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", Errorf(name+"_env", "%s is not set", env)
		}
		return v, nil
	}
	return value, nil
}
