# imdsguard's Packer provisioners, to paste into the build block of your own
# HCL2 template (amazon-ebs or any builder with an SSH communicator and sudo).
# They need one thing from the template: local.imdsguard_packages, a map from
# each of the build's source names to the package that source installs, for
# example
#
#   locals {
#     imdsguard_packages = {
#       my-al2023 = "dist/imdsguard-1.2.3-1.x86_64.rpm"
#       my-ubuntu = "dist/imdsguard_1.2.3_amd64.deb"
#     }
#   }
#
# and, so that instances launched from the image require IMDSv2 tokens, in
# each amazon-ebs source:
#
#   imds_support = "v2.0"
#   metadata_options {
#     http_endpoint               = "enabled"
#     http_tokens                 = "required"
#     http_put_response_hop_limit = 1
#   }
#
# imdsguard.pkr.hcl beside this file is a complete template that uses these
# provisioners word for word.

  # imdsguard: wait for cloud-init (it may hold the package manager's lock),
  # upload the package, install it, enable its units, and check the
  # installation without a network. local.imdsguard_packages maps each
  # source's name to its package: a .rpm (dnf) or a .deb (apt-get).
  provisioner "shell" {
    inline = [
      "if command -v cloud-init >/dev/null; then sudo cloud-init status --wait >/dev/null || true; fi",
    ]
  }

  provisioner "file" {
    source      = local.imdsguard_packages[source.name]
    destination = "/tmp/${basename(local.imdsguard_packages[source.name])}"
  }

  provisioner "shell" {
    inline = [
      "pkg='/tmp/${basename(local.imdsguard_packages[source.name])}'",
      "case \"$pkg\" in *.rpm) sudo dnf install -y \"$pkg\" ;; *.deb) sudo apt-get update -q && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \"$pkg\" ;; *) echo \"imdsguard: $pkg is neither a .rpm nor a .deb\" >&2; exit 1 ;; esac",
      "rm -f \"$pkg\"",
      "sudo systemctl enable imdsguard.socket imdsguard.service",
      "sudo imdsguard check --offline",
    ]
  }
