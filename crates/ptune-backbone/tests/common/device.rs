//! The device the numerics tests run on: flex, or libtorch's CPU with `PTUNE_TEST_BACKEND=tch`
//! in a build with the crate's `tch` feature (`cargo xtask build --backend tch --parity`).
//! Shared by path with ptune-encoder's and ptune-train's tests, so all three agree.

use burn::tensor::Device;

pub fn device() -> Device {
    match std::env::var("PTUNE_TEST_BACKEND").as_deref() {
        Err(_) | Ok("flex") => Device::flex(),
        Ok("tch") => libtorch(),
        Ok(other) => panic!("PTUNE_TEST_BACKEND={other}: the tests run on flex or tch"),
    }
}

#[cfg(feature = "tch")]
#[allow(deprecated)]
fn libtorch() -> Device {
    Device::libtorch()
}

#[cfg(not(feature = "tch"))]
fn libtorch() -> Device {
    panic!("PTUNE_TEST_BACKEND=tch needs a build with the `tch` feature")
}
