package testbed

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GuardImageRef is the DaemonSet's image as the shipped manifest names it
// (image: imdsguard:latest), normalized the way the CRI looks it up.
const GuardImageRef = "docker.io/library/imdsguard:latest"

// GuardImageOCI builds imdsguard's image with scripts/build-image.sh (the
// cached Debian base plus bin/imdsguard) and wraps it as an OCI archive
// named ref, with the ENTRYPOINT, CMD and ENV of packaging/image/Dockerfile:
// the image `make image` and the Dockerfile make, for a containerd with no
// registry. It returns the archive's path.
func (e *Env) GuardImageOCI(ref string) string {
	t := e.T
	t.Helper()
	start := time.Now()
	root := e.Path("imdsguard-image.tar")
	r := e.Run(Cmd{
		Name: "build-image.sh", Path: filepath.Join(e.Root, "scripts/build-image.sh"),
		Args:    []string{"--out", root},
		Env:     append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/local/go/bin"),
		Timeout: 10 * time.Minute,
	})
	if r.Err != nil {
		t.Fatalf("%v", r)
	}
	ic, err := dockerfileConfig(filepath.Join(e.Root, "packaging/image/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	p := e.Path("imdsguard-image.oci.tar")
	if err := writeOCIArchive(p, layer, ref, ic); err != nil {
		t.Fatal(err)
	}
	t.Logf("imdsguard's image %s: built in %v", ref, time.Since(start).Round(time.Millisecond))
	return p
}

// dockerfileConfig reads the final stage's ENTRYPOINT and CMD (JSON form)
// and ENV (KEY=VALUE) lines of a Dockerfile.
func dockerfileConfig(path string) (ImageConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImageConfig{}, err
	}
	defer f.Close()
	var ic ImageConfig
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kw, rest, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch kw {
		case "FROM":
			ic = ImageConfig{} // a later stage starts afresh
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &ic.Entrypoint); err != nil {
				return ic, err
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &ic.Cmd); err != nil {
				return ic, err
			}
		case "ENV":
			ic.Env = append(ic.Env, strings.TrimSpace(rest))
		}
	}
	return ic, sc.Err()
}
