//! End-to-end tests with the real kube-apiserver, etcd and Kyverno (controller and CLI), built by
//! scripts/install.sh kube kyverno.

mod kyverno_cli;
mod real_admission;
