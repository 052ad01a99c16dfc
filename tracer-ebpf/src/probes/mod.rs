//! One module per probe family; see the crate comment for why each hook.
pub mod close;
pub mod connect;
pub mod dns;
pub mod follow;
pub mod gotls;
pub mod io;
pub mod msg_io;
pub mod openssl;
pub mod payload;
pub mod segment;
pub mod sock_id;
pub mod state;
pub mod syscall;
pub mod tcp_signals;
