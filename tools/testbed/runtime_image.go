package testbed

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Images for the real runtimes are made offline: no registry is reachable,
// so a container's root is a tar built here and handed to `docker import`
// or, wrapped as an OCI image layout, to `ctr image import`.

// BusyboxStatic is Debian busybox-static's binary: the shell and wget of
// the client images.
const BusyboxStatic = "/bin/busybox"

// busyboxApplets are linked to busybox in a client image.
var busyboxApplets = []string{"sh", "wget", "cat", "ls", "sleep", "ip", "id", "nc", "printf", "echo"}

// ImageFile is one file of an image root.
type ImageFile struct {
	Path string // absolute path inside the image
	Mode int64
	Data []byte
	Link string // a symlink target instead of Data
}

// ClientImage is the root of a client container as a tar: busybox-static
// (sh, wget, ...) and bin/imdsclient-static (the real AWS SDK clients,
// built with CGO_ENABLED=0 by build-tools.sh) as /bin/imdsclient, plus an
// /etc/passwd. It skips the test when either binary is missing.
func (e *Env) ClientImage() string {
	e.T.Helper()
	e.RequireBins("imdsclient-static")
	bb, err := os.ReadFile(BusyboxStatic)
	if err != nil {
		testenv.Skipf(e.T, "no %s (%v): scripts/install-test-deps.sh installs busybox-static", BusyboxStatic, err)
	}
	cl, err := os.ReadFile(e.Bin("imdsclient-static"))
	if err != nil {
		e.T.Fatal(err)
	}
	files := []ImageFile{
		{Path: "/bin/busybox", Mode: 0o755, Data: bb},
		{Path: "/bin/imdsclient", Mode: 0o755, Data: cl},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, a := range busyboxApplets {
		files = append(files, ImageFile{Path: "/bin/" + a, Link: "busybox"})
	}
	p := e.Path("client-root.tar")
	if err := writeRootTar(p, files); err != nil {
		e.T.Fatal(err)
	}
	return p
}

// writeRootTar writes files, with their parent directories and the empty
// directories a runtime mounts over (/proc, /sys, /dev, /tmp, /etc), as a
// tar of a whole root.
func writeRootTar(dst string, files []ImageFile) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{"/": true}
	var add func(string) error
	add = func(dir string) error {
		if dirs[dir] {
			return nil
		}
		if err := add(path.Dir(dir)); err != nil {
			return err
		}
		dirs[dir] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "." + dir + "/", Mode: 0o755, ModTime: imageTime})
	}
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp", "/etc", "/run"} {
		if err := add(d); err != nil {
			return fmt.Errorf("image root %s: %w", dst, err)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if err := add(path.Dir(f.Path)); err != nil {
			return fmt.Errorf("image root %s: %w", dst, err)
		}
		if err := writeEntry(tw, f); err != nil {
			return fmt.Errorf("image root %s: %s: %w", dst, f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image root %s: %w", dst, err)
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// imageTime is every entry's modification time: the same files make the
// same tar.
var imageTime = time.Unix(0, 0)

func writeEntry(tw *tar.Writer, f ImageFile) error {
	h := &tar.Header{Name: "." + f.Path, Mode: f.Mode, ModTime: imageTime}
	if f.Link != "" {
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		return tw.WriteHeader(h)
	}
	h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := tw.Write(f.Data)
	return err
}

// OCIArchive wraps rootTar, a whole root as one uncompressed layer, into an
// OCI image layout tar named ref (what `ctr image import` reads): the
// layer, an image config for linux/amd64 with cmd, a manifest and an
// index.json whose manifest carries ref as its name. It returns the path.
func (e *Env) OCIArchive(rootTar, ref string, cmd []string) string {
	e.T.Helper()
	layer, err := os.ReadFile(rootTar)
	if err != nil {
		e.T.Fatal(err)
	}
	p := e.Path(filepath.Base(rootTar) + ".oci.tar")
	if err := writeOCIArchive(p, layer, ref, ImageConfig{Cmd: cmd, Env: []string{"PATH=/bin"}}); err != nil {
		e.T.Fatal(err)
	}
	return p
}

// ociDescriptor is a content descriptor (OCI image-spec).
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

// ImageConfig is the part of an OCI image config a runtime starts the
// container with.
type ImageConfig struct {
	Entrypoint, Cmd, Env []string
}

func writeOCIArchive(dst string, layer []byte, ref string, ic ImageConfig) error {
	blobs := map[string][]byte{}
	put := func(mediaType string, b []byte) ociDescriptor {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return ociDescriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	}
	layerDesc := put("application/vnd.oci.image.layer.v1.tar", layer)
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": ic.Entrypoint, "Cmd": ic.Cmd, "Env": ic.Env},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": put("application/vnd.oci.image.config.v1+json", config),
		"layers": []ociDescriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	md := put("application/vnd.oci.image.manifest.v1+json", manifest)
	md.Annotations = map[string]string{"org.opencontainers.image.ref.name": ref, "io.containerd.image.name": ref}
	md.Platform = map[string]string{"architecture": "amd64", "os": "linux"}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []ociDescriptor{md}})
	if err != nil {
		return err
	}
	return writeTarFiles(dst, blobs, map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json": index,
	})
}

// tarEntry is one regular file of a plain tar.
type tarEntry struct {
	name string
	data []byte
}

// writeTarFiles writes an OCI layout: blobs under blobs/sha256/, then the
// named top-level files.
func writeTarFiles(dst string, blobs, top map[string][]byte) error {
	var entries []tarEntry
	for d, b := range blobs {
		entries = append(entries, tarEntry{"blobs/sha256/" + d[len("sha256:"):], b})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	for _, n := range []string{"oci-layout", "index.json"} {
		entries = append(entries, tarEntry{n, top[n]})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: en.name, Mode: 0o644, Size: int64(len(en.data)), ModTime: imageTime}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(en.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}
