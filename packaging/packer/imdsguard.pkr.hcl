# Bakes imdsguard into two AMIs, one from Amazon Linux 2023 (the .rpm) and
# one from Ubuntu 24.04 LTS (the .deb): the package is uploaded, installed,
# its units enabled for every boot and the installation checked offline
# (`imdsguard check --offline`). Instances launched from either image require
# IMDSv2 tokens (imds_support = "v2.0"), and so does the build instance
# (metadata_options). README.md beside this file says how to run it.
#
#   packer init packaging/packer
#   packer build -var rpm_package=dist/imdsguard-1.2.3-1.x86_64.rpm \
#     -var deb_package=dist/imdsguard_1.2.3_amd64.deb packaging/packer
#
# The build block's provisioners are provisioner-snippet.hcl, word for word
# (the tests compare them).

packer {
  required_plugins {
    amazon = {
      # imds_support and metadata_options are the plugin's: the amazon-ebs
      # built into Packer 1.6 knows neither.
      version = ">= 1.2.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "rpm_package" {
  type        = string
  description = "The imdsguard .rpm for the Amazon Linux 2023 image (built beside the .deb into dist/, for x86_64)."
}

variable "deb_package" {
  type        = string
  description = "The imdsguard .deb for the Ubuntu image (make deb: dist/imdsguard_<version>_amd64.deb)."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")

  # The package each source installs, by source name: the snippet's
  # provisioners look it up as local.imdsguard_packages[source.name].
  imdsguard_packages = {
    al2023 = var.rpm_package
    ubuntu = var.deb_package
  }
}

source "amazon-ebs" "al2023" {
  region        = var.region
  instance_type = var.instance_type
  ami_name      = "imdsguard-al2023-${local.timestamp}"
  ssh_username  = "ec2-user"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  # Instances launched from the image require IMDSv2 tokens (EC2 then sets
  # their hop limit to 2; imdsguard gives containers their own tokens).
  imds_support = "v2.0"

  # The build instance itself requires tokens too, with hop limit 1.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = {
    Name = "imdsguard-al2023"
  }
}

source "amazon-ebs" "ubuntu" {
  region        = var.region
  instance_type = var.instance_type
  ami_name      = "imdsguard-ubuntu-${local.timestamp}"
  ssh_username  = "ubuntu"

  # Debian 12 instead: name "debian-12-amd64-*", owners ["136693071363"],
  # ssh_username "admin".
  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"]
    most_recent = true
  }

  imds_support = "v2.0"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = {
    Name = "imdsguard-ubuntu"
  }
}

build {
  sources = [
    "source.amazon-ebs.al2023",
    "source.amazon-ebs.ubuntu",
  ]

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
}
