//! Golden bytes, append/resume and fit rules of the netCDF writer; CDL text of the
//! same dataset.

use std::io::Cursor;

use proptest::prelude::*;

use super::*;
use crate::write::cdl::{render, CdlOptions, CdlWriter, VarData};
use crate::{SrcName, Time};

/// A packet of `chans` channels at 40 sps starting `start_us` with samples from `first`.
pub(crate) fn packet(
    pktid: u64,
    start_us: i64,
    chans: &[(&str, char, f64)],
    samples: &[Vec<i32>],
) -> (Packet, Vec<Channel>) {
    let mut p = Packet::new(
        SrcName::new("XX_STA01/MGENC/40").unwrap(),
        Time::from_micros(start_us),
        &b""[..],
    );
    p.pktid = pktid;
    let channels = chans
        .iter()
        .zip(samples)
        .map(|(&(chan, segtype, calib), s)| Channel {
            net: "XX".into(),
            sta: "STA01".into(),
            chan: chan.into(),
            loc: String::new(),
            start: Time::from_micros(start_us),
            samprate: 40.0,
            calib,
            calper: 1.0,
            segtype,
            samples: s.clone(),
        })
        .collect();
    (p, channels)
}

/// 2026-11-22T10:00:00.5Z.
const T0: i64 = 1_795_341_600_500_000;
const CHANS: [(&str, char, f64); 2] = [("BHZ", 'V', 1.0), ("BDF", 'I', 0.001)];

/// The fixed dataset: 2 packets x 2 channels x 3 samples, with a gap between them.
pub(crate) fn fixture() -> Vec<(Packet, Vec<Channel>)> {
    vec![
        packet(
            100,
            T0,
            &CHANS,
            &[vec![1, -2, 3], vec![-2147483647, 0, 2147483647]],
        ),
        packet(101, T0 + 500_000, &CHANS, &[vec![4, 5, 6], vec![7, -8, 9]]),
    ]
}

fn write_nc(version: CdfVersion, packets: &[(Packet, Vec<Channel>)]) -> Vec<u8> {
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions { version });
    for (p, c) in packets {
        w.append(p, c).unwrap();
        w.flush().unwrap();
    }
    w.finish().unwrap();
    w.into_inner().into_inner()
}

fn write_cdl(name: &str, packets: &[(Packet, Vec<Channel>)]) -> String {
    let mut w = CdlWriter::create(Vec::new(), CdlOptions { name: name.into() });
    for (p, c) in packets {
        w.append(p, c).unwrap();
    }
    w.finish().unwrap();
    String::from_utf8(w.into_inner()).unwrap()
}

/// A CDF-1 file finished without packets (`xxd -p -c 32`).
const EMPTY_CDF1: &str = "\
43444601000000000000000a000000010000000474696d65000000000000000c\
000000040000000b436f6e76656e74696f6e7300000000020000000643462d31\
2e3800000000000c7061636b65745f636f756e74000000060000000100000000\
0000000000000006736f75726365000000000002000000096f726220302e312e\
3000000000000007686973746f72790000000002000000257772697474656e20\
6279206f726220302e312e302066726f6d206f7262207061636b657473000000\
0000000b000000010000000474696d6500000001000000000000000c00000005\
0000000d7374616e646172645f6e616d65000000000000020000000474696d65\
000000096c6f6e675f6e616d65000000000000020000000e74696d65206f6620\
73616d706c65000000000005756e69747300000000000002000000276d696372\
6f7365636f6e64732073696e636520313937302d30312d30315430303a30303a\
30305a000000000863616c656e64617200000002000000087374616e64617264\
00000004617869730000000200000001540000000000000600000008000001a0\
";

/// The same in CDF-2: only the magic and the `begin` width differ.
const EMPTY_CDF2: &str = "\
43444602000000000000000a000000010000000474696d65000000000000000c\
000000040000000b436f6e76656e74696f6e7300000000020000000643462d31\
2e3800000000000c7061636b65745f636f756e74000000060000000100000000\
0000000000000006736f75726365000000000002000000096f726220302e312e\
3000000000000007686973746f72790000000002000000257772697474656e20\
6279206f726220302e312e302066726f6d206f7262207061636b657473000000\
0000000b000000010000000474696d6500000001000000000000000c00000005\
0000000d7374616e646172645f6e616d65000000000000020000000474696d65\
000000096c6f6e675f6e616d65000000000000020000000e74696d65206f6620\
73616d706c65000000000005756e69747300000000000002000000276d696372\
6f7365636f6e64732073696e636520313937302d30312d30315430303a30303a\
30305a000000000863616c656e64617200000002000000087374616e64617264\
0000000461786973000000020000000154000000000000060000000800000000\
000001a4\
";

/// The fixture in CDF-1 as orb wrote it before files had a `title` (and had a
/// `featureType` without a station position).
const PRE_TITLE_FIXTURE_CDF1: &str = "\
43444601000000060000000a000000020000000474696d65000000000000000b\
6e616d655f7374726c656e00000000080000000c0000000d0000000b436f6e76\
656e74696f6e7300000000020000000643462d312e3800000000000b66656174\
7572655479706500000000020000000a74696d65536572696573000000000007\
6e6574776f726b000000000200000002585800000000000773746174696f6e00\
00000002000000055354413031000000000000077372636e616d650000000002\
0000001158585f53544130312f4d47454e432f34300000000000000b73616d70\
6c655f7261746500000000060000000140440000000000000000000b66697273\
745f706b74696400000000060000000140590000000000000000000a6c617374\
5f706b7469640000000000060000000140594000000000000000000c7061636b\
65745f636f756e74000000060000000140000000000000000000001374696d65\
5f636f7665726167655f737461727400000000020000001b323032362d31312d\
32325431303a30303a30302e3530303030305a000000001174696d655f636f76\
65726167655f656e64000000000000020000001b323032362d31312d32325431\
303a30303a30312e3037353030305a0000000006736f75726365000000000002\
000000096f726220302e312e3000000000000007686973746f72790000000002\
000000257772697474656e206279206f726220302e312e302066726f6d206f72\
62207061636b6574730000000000000b000000040000000773746174696f6e00\
00000001000000010000000c00000002000000096c6f6e675f6e616d65000000\
000000020000000773746174696f6e000000000763665f726f6c650000000002\
0000000d74696d657365726965735f6964000000000000020000000800000594\
0000000474696d6500000001000000000000000c000000050000000d7374616e\
646172645f6e616d65000000000000020000000474696d65000000096c6f6e67\
5f6e616d65000000000000020000000e74696d65206f662073616d706c650000\
00000005756e69747300000000000002000000276d6963726f7365636f6e6473\
2073696e636520323032362d31312d32325431303a30303a30305a0000000008\
63616c656e64617200000002000000087374616e646172640000000461786973\
00000002000000015400000000000006000000080000059c0000000342485a00\
00000001000000000000000c00000006000000096c6f6e675f6e616d65000000\
000000020000001758582053544130312042485a2072617720636f756e747300\
00000005756e6974730000000000000200000006636f756e7473000000000005\
63616c696200000000000006000000013ff00000000000000000000663616c70\
6572000000000006000000013ff0000000000000000000077365677479706500\
0000000200000001560000000000000b636f6f7264696e617465730000000002\
0000000c74696d652073746174696f6e0000000400000004000005a400000003\
4244460000000001000000000000000c00000008000000096c6f6e675f6e616d\
65000000000000020000001d5858205354413031204244462070726573737572\
6520616e6f6d616c7900000000000005756e6974730000000000000200000002\
506100000000000d7374616e646172645f6e616d650000000000000200000014\
6169725f70726573737572655f616e6f6d616c790000000c7363616c655f6661\
63746f7200000006000000013f50624dd2f1a9fc0000000563616c6962000000\
00000006000000013f50624dd2f1a9fc0000000663616c706572000000000006\
000000013ff00000000000000000000773656774797065000000000200000001\
490000000000000b636f6f7264696e6174657300000000020000000c74696d65\
2073746174696f6e0000000400000004000005a858585f5354413031411e8480\
0000000000000001800000014120059000000000fffffffe000000004120c8e0\
00000000000000037fffffff412e8480000000000000000400000007412f47d0\
0000000000000005fffffff841300590000000000000000600000009\
";

/// The fixture in CDF-1.
const FIXTURE_CDF1: &str = "\
43444601000000060000000a000000020000000474696d65000000000000000b\
6e616d655f7374726c656e00000000080000000c0000000d0000000b436f6e76\
656e74696f6e7300000000020000000643462d312e380000000000057469746c\
65000000000000020000001e58585f53544130313a2064617461206172636869\
766564206279206f72620000000000076e6574776f726b000000000200000002\
585800000000000773746174696f6e0000000002000000055354413031000000\
000000077372636e616d6500000000020000001158585f53544130312f4d4745\
4e432f34300000000000000b73616d706c655f72617465000000000600000001\
40440000000000000000000b66697273745f706b746964000000000600000001\
40590000000000000000000a6c6173745f706b74696400000000000600000001\
40594000000000000000000c7061636b65745f636f756e740000000600000001\
40000000000000000000001374696d655f636f7665726167655f737461727400\
000000020000001b323032362d31312d32325431303a30303a30302e35303030\
30305a000000001174696d655f636f7665726167655f656e6400000000000002\
0000001b323032362d31312d32325431303a30303a30312e3037353030305a00\
00000006736f75726365000000000002000000096f726220302e312e30000000\
00000007686973746f72790000000002000000257772697474656e206279206f\
726220302e312e302066726f6d206f7262207061636b6574730000000000000b\
000000040000000773746174696f6e0000000001000000010000000c00000001\
000000096c6f6e675f6e616d65000000000000020000000773746174696f6e00\
0000000200000008000005800000000474696d6500000001000000000000000c\
000000050000000d7374616e646172645f6e616d650000000000000200000004\
74696d65000000096c6f6e675f6e616d65000000000000020000000e74696d65\
206f662073616d706c65000000000005756e6974730000000000000200000027\
6d6963726f7365636f6e64732073696e636520323032362d31312d3232543130\
3a30303a30305a000000000863616c656e64617200000002000000087374616e\
6461726400000004617869730000000200000001540000000000000600000008\
000005880000000342485a0000000001000000000000000c0000000600000009\
6c6f6e675f6e616d65000000000000020000001758582053544130312042485a\
2072617720636f756e74730000000005756e6974730000000000000200000006\
636f756e747300000000000563616c696200000000000006000000013ff00000\
000000000000000663616c706572000000000006000000013ff0000000000000\
0000000773656774797065000000000200000001560000000000000b636f6f72\
64696e6174657300000000020000000c74696d652073746174696f6e00000004\
0000000400000590000000034244460000000001000000000000000c00000008\
000000096c6f6e675f6e616d65000000000000020000001d5858205354413031\
2042444620707265737375726520616e6f6d616c7900000000000005756e6974\
730000000000000200000002506100000000000d7374616e646172645f6e616d\
6500000000000002000000146169725f70726573737572655f616e6f6d616c79\
0000000c7363616c655f666163746f7200000006000000013f50624dd2f1a9fc\
0000000563616c696200000000000006000000013f50624dd2f1a9fc00000006\
63616c706572000000000006000000013ff00000000000000000000773656774\
797065000000000200000001490000000000000b636f6f7264696e6174657300\
000000020000000c74696d652073746174696f6e000000040000000400000594\
58585f5354413031411e84800000000000000001800000014120059000000000\
fffffffe000000004120c8e000000000000000037fffffff412e848000000000\
0000000400000007412f47d00000000000000005fffffff84130059000000000\
0000000600000009\
";

/// The fixture in CDF-2 as orb wrote it before files had a `title`.
const PRE_TITLE_FIXTURE_CDF2: &str = "\
43444602000000060000000a000000020000000474696d65000000000000000b\
6e616d655f7374726c656e00000000080000000c0000000d0000000b436f6e76\
656e74696f6e7300000000020000000643462d312e3800000000000b66656174\
7572655479706500000000020000000a74696d65536572696573000000000007\
6e6574776f726b000000000200000002585800000000000773746174696f6e00\
00000002000000055354413031000000000000077372636e616d650000000002\
0000001158585f53544130312f4d47454e432f34300000000000000b73616d70\
6c655f7261746500000000060000000140440000000000000000000b66697273\
745f706b74696400000000060000000140590000000000000000000a6c617374\
5f706b7469640000000000060000000140594000000000000000000c7061636b\
65745f636f756e74000000060000000140000000000000000000001374696d65\
5f636f7665726167655f737461727400000000020000001b323032362d31312d\
32325431303a30303a30302e3530303030305a000000001174696d655f636f76\
65726167655f656e64000000000000020000001b323032362d31312d32325431\
303a30303a30312e3037353030305a0000000006736f75726365000000000002\
000000096f726220302e312e3000000000000007686973746f72790000000002\
000000257772697474656e206279206f726220302e312e302066726f6d206f72\
62207061636b6574730000000000000b000000040000000773746174696f6e00\
00000001000000010000000c00000002000000096c6f6e675f6e616d65000000\
000000020000000773746174696f6e000000000763665f726f6c650000000002\
0000000d74696d657365726965735f6964000000000000020000000800000000\
000005a40000000474696d6500000001000000000000000c000000050000000d\
7374616e646172645f6e616d65000000000000020000000474696d6500000009\
6c6f6e675f6e616d65000000000000020000000e74696d65206f662073616d70\
6c65000000000005756e69747300000000000002000000276d6963726f736563\
6f6e64732073696e636520323032362d31312d32325431303a30303a30305a00\
0000000863616c656e64617200000002000000087374616e6461726400000004\
61786973000000020000000154000000000000060000000800000000000005ac\
0000000342485a0000000001000000000000000c00000006000000096c6f6e67\
5f6e616d65000000000000020000001758582053544130312042485a20726177\
20636f756e74730000000005756e6974730000000000000200000006636f756e\
747300000000000563616c696200000000000006000000013ff0000000000000\
0000000663616c706572000000000006000000013ff000000000000000000007\
73656774797065000000000200000001560000000000000b636f6f7264696e61\
74657300000000020000000c74696d652073746174696f6e0000000400000004\
00000000000005b4000000034244460000000001000000000000000c00000008\
000000096c6f6e675f6e616d65000000000000020000001d5858205354413031\
2042444620707265737375726520616e6f6d616c7900000000000005756e6974\
730000000000000200000002506100000000000d7374616e646172645f6e616d\
6500000000000002000000146169725f70726573737572655f616e6f6d616c79\
0000000c7363616c655f666163746f7200000006000000013f50624dd2f1a9fc\
0000000563616c696200000000000006000000013f50624dd2f1a9fc00000006\
63616c706572000000000006000000013ff00000000000000000000773656774\
797065000000000200000001490000000000000b636f6f7264696e6174657300\
000000020000000c74696d652073746174696f6e000000040000000400000000\
000005b858585f5354413031411e848000000000000000018000000141200590\
00000000fffffffe000000004120c8e000000000000000037fffffff412e8480\
000000000000000400000007412f47d00000000000000005fffffff841300590\
000000000000000600000009\
";

/// The fixture in CDF-2.
const FIXTURE_CDF2: &str = "\
43444602000000060000000a000000020000000474696d65000000000000000b\
6e616d655f7374726c656e00000000080000000c0000000d0000000b436f6e76\
656e74696f6e7300000000020000000643462d312e380000000000057469746c\
65000000000000020000001e58585f53544130313a2064617461206172636869\
766564206279206f72620000000000076e6574776f726b000000000200000002\
585800000000000773746174696f6e0000000002000000055354413031000000\
000000077372636e616d6500000000020000001158585f53544130312f4d4745\
4e432f34300000000000000b73616d706c655f72617465000000000600000001\
40440000000000000000000b66697273745f706b746964000000000600000001\
40590000000000000000000a6c6173745f706b74696400000000000600000001\
40594000000000000000000c7061636b65745f636f756e740000000600000001\
40000000000000000000001374696d655f636f7665726167655f737461727400\
000000020000001b323032362d31312d32325431303a30303a30302e35303030\
30305a000000001174696d655f636f7665726167655f656e6400000000000002\
0000001b323032362d31312d32325431303a30303a30312e3037353030305a00\
00000006736f75726365000000000002000000096f726220302e312e30000000\
00000007686973746f72790000000002000000257772697474656e206279206f\
726220302e312e302066726f6d206f7262207061636b6574730000000000000b\
000000040000000773746174696f6e0000000001000000010000000c00000001\
000000096c6f6e675f6e616d65000000000000020000000773746174696f6e00\
000000020000000800000000000005900000000474696d650000000100000000\
0000000c000000050000000d7374616e646172645f6e616d6500000000000002\
0000000474696d65000000096c6f6e675f6e616d65000000000000020000000e\
74696d65206f662073616d706c65000000000005756e69747300000000000002\
000000276d6963726f7365636f6e64732073696e636520323032362d31312d32\
325431303a30303a30305a000000000863616c656e6461720000000200000008\
7374616e64617264000000046178697300000002000000015400000000000006\
0000000800000000000005980000000342485a0000000001000000000000000c\
00000006000000096c6f6e675f6e616d65000000000000020000001758582053\
544130312042485a2072617720636f756e74730000000005756e697473000000\
0000000200000006636f756e747300000000000563616c696200000000000006\
000000013ff00000000000000000000663616c70657200000000000600000001\
3ff0000000000000000000077365677479706500000000020000000156000000\
0000000b636f6f7264696e6174657300000000020000000c74696d6520737461\
74696f6e000000040000000400000000000005a0000000034244460000000001\
000000000000000c00000008000000096c6f6e675f6e616d6500000000000002\
0000001d58582053544130312042444620707265737375726520616e6f6d616c\
7900000000000005756e6974730000000000000200000002506100000000000d\
7374616e646172645f6e616d6500000000000002000000146169725f70726573\
737572655f616e6f6d616c790000000c7363616c655f666163746f7200000006\
000000013f50624dd2f1a9fc0000000563616c69620000000000000600000001\
3f50624dd2f1a9fc0000000663616c706572000000000006000000013ff00000\
000000000000000773656774797065000000000200000001490000000000000b\
636f6f7264696e6174657300000000020000000c74696d652073746174696f6e\
000000040000000400000000000005a458585f5354413031411e848000000000\
00000001800000014120059000000000fffffffe000000004120c8e000000000\
000000037fffffff412e8480000000000000000400000007412f47d000000000\
00000005fffffff841300590000000000000000600000009\
";

/// The fixture as earlier versions of orb wrote it (CDF-2): `time` in seconds
/// (`0.5, 0.525, ...`, units `seconds since 2026-11-22T10:00:00Z`), every channel's
/// `long_name` ending in "raw counts".
const LEGACY_FIXTURE_CDF2: &str = "\
43444602000000060000000a000000020000000474696d65000000000000000b\
6e616d655f7374726c656e00000000080000000c0000000d0000000b436f6e76\
656e74696f6e7300000000020000000643462d312e3800000000000b66656174\
7572655479706500000000020000000a74696d65536572696573000000000007\
6e6574776f726b000000000200000002585800000000000773746174696f6e00\
00000002000000055354413031000000000000077372636e616d650000000002\
0000001158585f53544130312f4d47454e432f34300000000000000b73616d70\
6c655f7261746500000000060000000140440000000000000000000b66697273\
745f706b74696400000000060000000140590000000000000000000a6c617374\
5f706b7469640000000000060000000140594000000000000000000c7061636b\
65745f636f756e74000000060000000140000000000000000000001374696d65\
5f636f7665726167655f737461727400000000020000001b323032362d31312d\
32325431303a30303a30302e3530303030305a000000001174696d655f636f76\
65726167655f656e64000000000000020000001b323032362d31312d32325431\
303a30303a30312e3037353030305a0000000006736f75726365000000000002\
000000096f726220302e312e3000000000000007686973746f72790000000002\
000000257772697474656e206279206f726220302e312e302066726f6d206f72\
62207061636b6574730000000000000b000000040000000773746174696f6e00\
00000001000000010000000c00000002000000096c6f6e675f6e616d65000000\
000000020000000773746174696f6e000000000763665f726f6c650000000002\
0000000d74696d657365726965735f6964000000000000020000000800000000\
000005980000000474696d6500000001000000000000000c000000050000000d\
7374616e646172645f6e616d65000000000000020000000474696d6500000009\
6c6f6e675f6e616d65000000000000020000000e74696d65206f662073616d70\
6c65000000000005756e69747300000000000002000000227365636f6e647320\
73696e636520323032362d31312d32325431303a30303a30305a000000000008\
63616c656e64617200000002000000087374616e646172640000000461786973\
000000020000000154000000000000060000000800000000000005a000000003\
42485a0000000001000000000000000c00000006000000096c6f6e675f6e616d\
65000000000000020000001758582053544130312042485a2072617720636f75\
6e74730000000005756e6974730000000000000200000006636f756e74730000\
0000000563616c696200000000000006000000013ff000000000000000000006\
63616c706572000000000006000000013ff00000000000000000000773656774\
797065000000000200000001560000000000000b636f6f7264696e6174657300\
000000020000000c74696d652073746174696f6e000000040000000400000000\
000005a8000000034244460000000001000000000000000c0000000800000009\
6c6f6e675f6e616d650000000000000200000017585820535441303120424446\
2072617720636f756e74730000000005756e6974730000000000000200000002\
506100000000000d7374616e646172645f6e616d650000000000000200000014\
6169725f70726573737572655f616e6f6d616c790000000c7363616c655f6661\
63746f7200000006000000013f50624dd2f1a9fc0000000563616c6962000000\
00000006000000013f50624dd2f1a9fc0000000663616c706572000000000006\
000000013ff00000000000000000000773656774797065000000000200000001\
490000000000000b636f6f7264696e6174657300000000020000000c74696d65\
2073746174696f6e000000040000000400000000000005ac58585f5354413031\
3fe000000000000000000001800000013fe0cccccccccccdfffffffe00000000\
3fe199999999999a000000037fffffff3ff00000000000000000000400000007\
3ff066666666666600000005fffffff83ff0cccccccccccd0000000600000009\
";

/// An empty CDF-1 file as earlier versions wrote it (`seconds since 1970-01-01T00:00:00Z`).
const LEGACY_EMPTY_CDF1: &str = "\
43444601000000000000000a000000010000000474696d65000000000000000c\
000000040000000b436f6e76656e74696f6e7300000000020000000643462d31\
2e3800000000000c7061636b65745f636f756e74000000060000000100000000\
0000000000000006736f75726365000000000002000000096f726220302e312e\
3000000000000007686973746f72790000000002000000257772697474656e20\
6279206f726220302e312e302066726f6d206f7262207061636b657473000000\
0000000b000000010000000474696d6500000001000000000000000c00000005\
0000000d7374616e646172645f6e616d65000000000000020000000474696d65\
000000096c6f6e675f6e616d65000000000000020000000e74696d65206f6620\
73616d706c65000000000005756e69747300000000000002000000227365636f\
6e64732073696e636520313937302d30312d30315430303a30303a30305a0000\
0000000863616c656e64617200000002000000087374616e6461726400000004\
6178697300000002000000015400000000000006000000080000019c\
";

/// The fixture as CDL: what `ncdump f2.nc` prints for `FIXTURE_CDF2`.
const FIXTURE_CDL: &str = r#"netcdf f2 {
dimensions:
	time = UNLIMITED ; // (6 currently)
	name_strlen = 8 ;
variables:
	char station(name_strlen) ;
		station:long_name = "station" ;
	double time(time) ;
		time:standard_name = "time" ;
		time:long_name = "time of sample" ;
		time:units = "microseconds since 2026-11-22T10:00:00Z" ;
		time:calendar = "standard" ;
		time:axis = "T" ;
	int BHZ(time) ;
		BHZ:long_name = "XX STA01 BHZ raw counts" ;
		BHZ:units = "counts" ;
		BHZ:calib = 1. ;
		BHZ:calper = 1. ;
		BHZ:segtype = "V" ;
		BHZ:coordinates = "time station" ;
	int BDF(time) ;
		BDF:long_name = "XX STA01 BDF pressure anomaly" ;
		BDF:units = "Pa" ;
		BDF:standard_name = "air_pressure_anomaly" ;
		BDF:scale_factor = 0.001 ;
		BDF:calib = 0.001 ;
		BDF:calper = 1. ;
		BDF:segtype = "I" ;
		BDF:coordinates = "time station" ;

// global attributes:
		:Conventions = "CF-1.8" ;
		:title = "XX_STA01: data archived by orb" ;
		:network = "XX" ;
		:station = "STA01" ;
		:srcname = "XX_STA01/MGENC/40" ;
		:sample_rate = 40. ;
		:first_pktid = 100. ;
		:last_pktid = 101. ;
		:packet_count = 2. ;
		:time_coverage_start = "2026-11-22T10:00:00.500000Z" ;
		:time_coverage_end = "2026-11-22T10:00:01.075000Z" ;
		:source = "orb 0.1.0" ;
		:history = "written by orb 0.1.0 from orb packets" ;
data:

 station = "XX_STA01" ;

 time = 500000, 525000, 550000, 1000000, 1025000, 1050000 ;

 BHZ = 1, -2, 3, 4, 5, 6 ;

 BDF = _, 0, 2147483647, 7, -8, 9 ;
}
"#;

/// An empty file as CDL.
const EMPTY_CDL: &str = r#"netcdf empty {
dimensions:
	time = UNLIMITED ; // (0 currently)
variables:
	double time(time) ;
		time:standard_name = "time" ;
		time:long_name = "time of sample" ;
		time:units = "microseconds since 1970-01-01T00:00:00Z" ;
		time:calendar = "standard" ;
		time:axis = "T" ;

// global attributes:
		:Conventions = "CF-1.8" ;
		:packet_count = 0. ;
		:source = "orb 0.1.0" ;
		:history = "written by orb 0.1.0 from orb packets" ;
data:
}
"#;

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// The goldens name the software version; a version bump regenerates them.
fn check_version() {
    assert_eq!(
        station::SOFTWARE,
        "orb 0.1.0",
        "the golden files below spell out `orb 0.1.0`: regenerate them for the new version"
    );
}

#[test]
fn golden_empty_files() {
    check_version();
    assert_eq!(write_nc(CdfVersion::Classic, &[]), unhex(EMPTY_CDF1));
    assert_eq!(write_nc(CdfVersion::Offset64, &[]), unhex(EMPTY_CDF2));
    assert_eq!(write_cdl("empty", &[]), EMPTY_CDL);
}

#[test]
fn golden_fixture_files() {
    check_version();
    assert_eq!(
        write_nc(CdfVersion::Classic, &fixture()),
        unhex(FIXTURE_CDF1)
    );
    assert_eq!(
        write_nc(CdfVersion::Offset64, &fixture()),
        unhex(FIXTURE_CDF2)
    );
    assert_eq!(write_cdl("f2", &fixture()), FIXTURE_CDL);
}

#[test]
fn golden_header_fields_are_where_the_specification_puts_them() {
    let bytes = unhex(FIXTURE_CDF2);
    assert_eq!(&bytes[..4], b"CDF\x02");
    assert_eq!(bytes[4..8], 6u32.to_be_bytes(), "numrecs");
    assert_eq!(bytes[8..12], 0x0Au32.to_be_bytes(), "NC_DIMENSION");
    let h = header::decode(&bytes).unwrap();
    let layout = h.dataset.layout(h.len as u64);
    // station (8 chars) right after the header, then 6 records of 8 + 4 + 4 bytes.
    assert_eq!(layout.begins[0], h.len as u64);
    assert_eq!(layout.rec_begin, h.len as u64 + 8);
    assert_eq!(layout.recsize, 16);
    assert_eq!(bytes.len() as u64, layout.rec_begin + 6 * 16);
    let rec0 = &bytes[layout.rec_begin as usize..][..16];
    assert_eq!(
        rec0[..8],
        500_000f64.to_be_bytes(),
        "0.5 s after the base, in us"
    );
    assert_eq!(rec0[8..12], 1i32.to_be_bytes());
    assert_eq!(rec0[12..], (-2147483647i32).to_be_bytes());
    let one = unhex(FIXTURE_CDF1);
    assert_eq!(
        one.len(),
        bytes.len() - 16,
        "4 fewer offset bytes for each of 4 variables"
    );
}

#[test]
fn the_reader_gives_back_what_was_written() {
    let c = read(&mut Cursor::new(write_nc(CdfVersion::Offset64, &fixture()))).unwrap();
    assert_eq!(
        c.time,
        vec![
            500_000.0,
            525_000.0,
            550_000.0,
            1e6,
            1_025_000.0,
            1_050_000.0
        ]
    );
    assert_eq!(c.station.as_deref(), Some("XX_STA01"));
    assert_eq!(
        c.channels,
        vec![
            ("BHZ".to_owned(), vec![1, -2, 3, 4, 5, 6]),
            ("BDF".to_owned(), vec![-2147483647, 0, 2147483647, 7, -8, 9]),
        ]
    );
    // The CDL printer over what the reader found gives the CDL writer's text.
    let data = [
        VarData::Text(c.station.as_deref().unwrap()),
        VarData::Double(&c.time),
        VarData::Int(&c.channels[0].1),
        VarData::Int(&c.channels[1].1),
    ];
    assert_eq!(
        render("f2", &c.header.dataset, c.time.len(), &data),
        FIXTURE_CDL
    );
}

#[test]
fn resume_continues_to_the_same_bytes_and_summary() {
    for version in [CdfVersion::Classic, CdfVersion::Offset64] {
        let packets = fixture();
        let whole = write_nc(version, &packets);
        let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions { version });
        w.append(&packets[0].0, &packets[0].1).unwrap();
        w.flush().unwrap();
        let first_summary = w.summary().clone();
        let file = w.into_inner();
        let mut w = NetcdfWriter::resume(file).unwrap();
        assert_eq!(w.summary(), &first_summary);
        w.append(&packets[1].0, &packets[1].1).unwrap();
        let mut all = FileSummary::default();
        packets.iter().for_each(|(p, c)| all.add(p, c));
        assert_eq!(w.summary(), &all);
        w.finish().unwrap();
        assert_eq!(w.into_inner().into_inner(), whole);
        // And a resumed finished file reports the same summary.
        let w = NetcdfWriter::resume(Cursor::new(whole)).unwrap();
        assert_eq!(w.summary(), &all);
    }
}

#[test]
fn resume_refuses_what_it_cannot_continue() {
    let err = NetcdfWriter::resume(Cursor::new(Vec::new())).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let mut bytes = unhex(FIXTURE_CDF2);
    bytes.truncate(40);
    assert!(matches!(
        NetcdfWriter::resume(Cursor::new(bytes)),
        Err(WriteError::Corrupt(_))
    ));
    let err = NetcdfWriter::resume(Cursor::new(b"\x89HDF\r\n\x1a\n".to_vec())).unwrap_err();
    assert!(matches!(err, WriteError::Corrupt(_)));
    // A header this writer would not write (here: a variable's begin offset moved).
    let mut bytes = unhex(FIXTURE_CDF2);
    let h = header::decode(&bytes).unwrap().len;
    bytes[h - 1] ^= 4;
    let err = NetcdfWriter::resume(Cursor::new(bytes)).unwrap_err();
    assert!(err.to_string().contains("differs"), "{err}");
    // An empty file resumes into a writer whose first packet lays the file out.
    let mut w = NetcdfWriter::resume(Cursor::new(unhex(EMPTY_CDF1))).unwrap();
    for (p, c) in fixture() {
        w.append(&p, &c).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(w.into_inner().into_inner(), unhex(FIXTURE_CDF1));
}

/// What a file's `time` value decodes to, in nanoseconds after its base, computed as
/// xarray 2026.9 does (`coding/times.py`, `_numbers_to_timedelta`): the double times
/// the unit's nanoseconds, in doubles, truncated to `int64`.
fn xarray_ns(units: &str, v: f64) -> i64 {
    let per = if units.starts_with("microseconds since ") {
        1e3
    } else if units.starts_with("seconds since ") {
        1e9
    } else {
        panic!("units {units:?}")
    };
    (v * per) as i64
}

fn time_units(c: &Contents) -> String {
    let ds = &c.header.dataset;
    match model::find_attr(&ds.vars[station::TIME_VAR].attrs, "units") {
        Some(model::AttrValue::Text(u)) => u.clone(),
        other => panic!("time units {other:?}"),
    }
}

/// Every sample time decodes exactly: 40 sps starting at .025 s offsets (where seconds
/// as doubles decoded 1 ns early), 3 sps (a third of a second per sample), 250 sps.
#[test]
fn every_time_decodes_exactly_to_the_nanosecond() {
    for (rate, start) in [
        (40.0, T0 + 25_000),
        (40.0, T0 + 1_675_000),
        (3.0, T0 + 1),
        (250.0, T0 + 999_996),
    ] {
        let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default());
        let mut want = Vec::new();
        let mut at = start;
        for k in 0..40 {
            let (p, mut c) = packet(k, at, &CHANS, &[vec![0; 97], vec![1; 97]]);
            c.iter_mut().for_each(|c| c.samprate = rate);
            want.extend((0..97).map(|i| c[0].sample_time(i).as_micros()));
            at = c[0].end().as_micros();
            w.append(&p, &c).unwrap();
        }
        w.finish().unwrap();
        let c = read(&mut Cursor::new(w.into_inner().into_inner())).unwrap();
        let units = time_units(&c);
        let base = start.div_euclid(1_000_000) * 1_000_000;
        let got: Vec<i64> = c.time.iter().map(|&v| xarray_ns(&units, v)).collect();
        let want: Vec<i64> = want.iter().map(|us| (us - base) * 1000).collect();
        assert_eq!(got, want, "{rate} sps from {start}");
    }
}

/// The exactness limit: a packet ending at [`station::MAX_EXACT_MICROS`] after the
/// base fits and decodes exactly; one reaching a microsecond further does not fit.
#[test]
fn files_end_where_times_stop_decoding_exactly() {
    let base = T0 / 1_000_000 * 1_000_000;
    let limit = base + station::MAX_EXACT_MICROS;
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default());
    let (p, c) = &fixture()[0];
    w.append(p, c).unwrap();
    w.flush().unwrap();
    // 2 samples at 40 sps: the second is 25 ms after the first.
    let (p, c) = packet(2, limit - 25_000 + 1, &CHANS, &[vec![1, 2], vec![3, 4]]);
    assert_does_not_fit(&mut w, &p, &c, "834 days");
    let (p, c) = packet(3, limit - 25_000, &CHANS, &[vec![1, 2], vec![3, 4]]);
    w.append(&p, &c).unwrap();
    w.finish().unwrap();
    let c = read(&mut Cursor::new(w.into_inner().into_inner())).unwrap();
    let last = *c.time.last().unwrap();
    assert_eq!(last, station::MAX_EXACT_MICROS as f64);
    assert_eq!(
        xarray_ns(&time_units(&c), last),
        station::MAX_EXACT_MICROS * 1000
    );
    // One microsecond further the product is no longer exact: the limit is tight.
    let beyond = (station::MAX_EXACT_MICROS + 1..station::MAX_EXACT_MICROS + 1000)
        .filter(|&us| xarray_ns(&time_units(&c), us as f64) != us * 1000)
        .count();
    assert!(beyond > 0);
    // A first packet that alone spans past the limit does not fit an empty file.
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default());
    let (p, mut c) = packet(1, T0, &CHANS, &[vec![1, 2], vec![3, 4]]);
    c.iter_mut().for_each(|c| c.samprate = 1e-8);
    w.flush().unwrap();
    assert_does_not_fit(&mut w, &p, &c, "834 days");
}

/// A file earlier versions wrote (time in seconds) resumes with its summary, so a
/// restarted caller knows what it holds, but takes no packet: the caller starts a new
/// file. Flushing and finishing it leave every byte as it was.
#[test]
fn files_with_times_in_seconds_resume_read_only() {
    let old = unhex(LEGACY_FIXTURE_CDF2);
    let c = read(&mut Cursor::new(old.clone())).unwrap();
    assert_eq!(time_units(&c), "seconds since 2026-11-22T10:00:00Z");
    assert_eq!(c.time, vec![0.5, 0.525, 0.55, 1.0, 1.025, 1.05]);
    let mut w = NetcdfWriter::resume(Cursor::new(old.clone())).unwrap();
    let mut all = FileSummary::default();
    fixture().iter().for_each(|(p, c)| all.add(p, c));
    assert_eq!(w.summary(), &all);
    let next = T0 + 1_075_000;
    let (p, c) = packet(102, next, &CHANS, &[vec![1], vec![2]]);
    assert_does_not_fit(&mut w, &p, &c, "seconds");
    w.finish().unwrap();
    assert_eq!(w.into_inner().into_inner(), old);
    // An empty file of theirs holds nothing: its first packet lays it out anew.
    let mut w = NetcdfWriter::resume(Cursor::new(unhex(LEGACY_EMPTY_CDF1))).unwrap();
    for (p, c) in fixture() {
        w.append(&p, &c).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(w.into_inner().into_inner(), unhex(FIXTURE_CDF1));
}

/// `long_name` says what a reader gets: the quantity for channels that `scale_factor`
/// unpacks to physical units, raw counts otherwise (and for a pressure channel of
/// unknown calib).
#[test]
fn long_names_say_what_the_values_are() {
    let chans = [
        ("BHZ", 'V', 1.0),
        ("LDO", 'P', 0.01),
        ("LDK", 'K', 0.5),
        ("BDF", 'I', 0.001),
        ("LDX", 'P', 0.0),
    ];
    let (p, c) = packet(1, T0, &chans, &vec![vec![1]; chans.len()]);
    let cdl = write_cdl("x", &[(p, c)]);
    for (name, long_name, units) in [
        ("BHZ", "raw counts", "counts"),
        ("LDO", "pressure", "hPa"),
        ("LDK", "pressure", "kPa"),
        ("BDF", "pressure anomaly", "Pa"),
        ("LDX", "raw counts", "counts"),
    ] {
        let want = format!(
            "\t\t{name}:long_name = \"XX STA01 {name} {long_name}\" ;\n\t\t{name}:units = \"{units}\" ;\n"
        );
        assert!(cdl.contains(&want), "{want:?} in\n{cdl}");
    }
}

/// A barometer's calib as its MGENC packet carries it (the f32 nearest 0.01) reaches
/// the file as 0.01, so CF readers unpack 101297 counts to exactly 1012.97 hPa.
#[test]
fn calibrations_from_f32_fields_reach_the_file_as_their_decimals() {
    let (mut p, c) = packet(
        1,
        T0,
        &[
            ("LDO", 'P', f64::from(0.01f32)),
            ("BDF", 'I', f64::from(0.001f32)),
        ],
        &[vec![101_297], vec![-5]],
    );
    p.payload = crate::payload::mgenc::encode(&c).unwrap().into();
    let packets = [(
        p.clone(),
        crate::payload::decode(&p.srcname, p.time, &p.payload).unwrap(),
    )];
    let cdl = write_cdl("x", &packets);
    assert!(cdl.contains("\t\tLDO:scale_factor = 0.01 ;\n"), "{cdl}");
    assert!(cdl.contains("\t\tBDF:scale_factor = 0.001 ;\n"), "{cdl}");
    let c = read(&mut Cursor::new(write_nc(CdfVersion::Offset64, &packets))).unwrap();
    let scale = match model::find_attr(&c.header.dataset.vars[2].attrs, "scale_factor") {
        Some(model::AttrValue::Double(v)) => v[0],
        other => panic!("{other:?}"),
    };
    // What a CF reader computes: the count, as a double, times scale_factor.
    assert_eq!(f64::from(c.channels[0].1[0]) * scale, 1012.97);
}

/// What each flush leaves, and what a crash between a record write and the header
/// write leaves: readable, holding exactly the records counted.
#[test]
fn every_crash_point_leaves_a_readable_file_with_the_counted_records() {
    let packets: Vec<_> = (0..4)
        .map(|k| {
            let s: Vec<i32> = (0..3).map(|i| k * 10 + i).collect();
            packet(
                200 + k as u64,
                T0 + i64::from(k) * 75_000,
                &CHANS,
                &[s.clone(), s],
            )
        })
        .collect();
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default());
    let mut images = Vec::new();
    for (p, c) in &packets {
        w.append(p, c).unwrap();
        w.flush().unwrap();
        images.push(w.get_ref().get_ref().clone());
    }
    for (k, image) in images.iter().enumerate() {
        let c = read(&mut Cursor::new(image.clone())).unwrap();
        assert_eq!(c.time.len(), 3 * (k + 1));
        if k == 0 {
            continue;
        }
        // Records of flush k on disk (maybe cut short), header still from flush k-1.
        let header_len = header::decode(image).unwrap().len;
        let before = &images[k - 1];
        for cut in before.len()..=image.len() {
            let mut torn = image[..cut].to_vec();
            torn[..header_len].copy_from_slice(&before[..header_len]);
            let c = read(&mut Cursor::new(torn.clone())).unwrap();
            assert_eq!(c.time.len(), 3 * k, "cut at {cut}");
            // Resuming such a file overwrites the uncounted tail.
            let mut w = NetcdfWriter::resume(Cursor::new(torn)).unwrap();
            for (p, c) in &packets[k..] {
                w.append(p, c).unwrap();
            }
            w.finish().unwrap();
            assert_eq!(&w.into_inner().into_inner(), images.last().unwrap());
        }
    }
}

fn assert_does_not_fit(
    w: &mut NetcdfWriter<Cursor<Vec<u8>>>,
    p: &Packet,
    c: &[Channel],
    why: &str,
) {
    let before = w.get_ref().get_ref().clone();
    let summary = w.summary().clone();
    match w.append(p, c) {
        Err(WriteError::DoesNotFit { pktid, reason }) => {
            assert_eq!(pktid, p.pktid);
            assert!(reason.contains(why), "{reason:?} should mention {why:?}");
        }
        other => panic!("expected DoesNotFit ({why}), got {other:?}"),
    }
    w.flush().unwrap();
    assert_eq!(w.get_ref().get_ref(), &before, "the file changed ({why})");
    assert_eq!(w.summary(), &summary);
}

#[test]
fn packets_that_do_not_fit_are_refused_and_change_nothing() {
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default());
    let (p, c) = &fixture()[0];
    w.append(p, c).unwrap();
    w.flush().unwrap();
    let next = T0 + 75_000;
    let ok = |k: u64| packet(k, next, &CHANS, &[vec![1, 2], vec![3, 4]]);

    let (p, mut c) = ok(1);
    c[1].sta = "STA02".into();
    assert_does_not_fit(&mut w, &p, &c, "several stations");
    c.iter_mut().for_each(|c| c.sta = "STA02".into());
    assert_does_not_fit(&mut w, &p, &c, "STA02");
    let (p, mut c) = ok(2);
    c.iter_mut().for_each(|c| c.samprate = 20.0);
    assert_does_not_fit(&mut w, &p, &c, "sample rate");
    let (p, c) = ok(3);
    assert_does_not_fit(&mut w, &p, &c[..1], "1 channels");
    let (p, mut c) = ok(4);
    c[1].chan = "BHN".into();
    assert_does_not_fit(&mut w, &p, &c, "BDF is missing");
    let (p, mut c) = ok(5);
    c[1].calib = 2.0;
    assert_does_not_fit(&mut w, &p, &c, "calib");
    let (p, mut c) = ok(6);
    c[1].samples.push(5);
    assert_does_not_fit(&mut w, &p, &c, "start and length");
    let (p, c) = packet(7, next - 25_000, &CHANS, &[vec![1], vec![2]]);
    assert_does_not_fit(&mut w, &p, &c, "overlaps");
    let (p, _) = ok(8);
    assert_does_not_fit(&mut w, &p, &[], "no decoded channels");
    let (mut p, c) = ok(9);
    p.srcname = SrcName::new("XX_STA01/GENC/BHZ").unwrap();
    assert_does_not_fit(&mut w, &p, &c, "srcname");
    // A packet right at the end, or after a gap, fits.
    let (p, c) = ok(10);
    w.append(&p, &c).unwrap();
    let (p, c) = packet(11, next + 3_600_000_000, &CHANS, &[vec![1], vec![2]]);
    w.append(&p, &c).unwrap();
    w.finish().unwrap();
    let c = read(&mut Cursor::new(w.into_inner().into_inner())).unwrap();
    assert_eq!(
        c.time,
        vec![
            500_000.0,
            525_000.0,
            550_000.0,
            575_000.0,
            600_000.0,
            3_600_575_000.0
        ]
    );
    assert!(matches!(
        NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default()).append(
            &fixture()[0].0,
            &[Channel {
                chan: "1HZ".into(),
                ..fixture()[0].1[0].clone()
            }]
        ),
        Err(WriteError::DoesNotFit { .. })
    ));
}

#[test]
fn nothing_is_appended_after_finish() {
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default());
    w.finish().unwrap();
    let (p, c) = &fixture()[0];
    assert!(matches!(w.append(p, c), Err(WriteError::Finished)));
    let mut w = CdlWriter::create(Vec::new(), CdlOptions { name: "x".into() });
    w.finish().unwrap();
    assert!(matches!(w.append(p, c), Err(WriteError::Finished)));
}

/// One random packet: its channels' samples and the gap after it, in samples.
type PacketSpec = (Vec<Vec<i32>>, u32);

/// Random packets of one station: the channel count and the packets.
fn stream() -> impl Strategy<Value = (usize, Vec<PacketSpec>)> {
    (1usize..4).prop_flat_map(|nchan| {
        let packet = (1usize..40).prop_flat_map(move |n| {
            (
                proptest::collection::vec(proptest::collection::vec(any::<i32>(), n), nchan),
                prop_oneof![3 => Just(0u32), 1 => 1u32..100_000],
            )
        });
        (Just(nchan), proptest::collection::vec(packet, 1..8))
    })
}

const NAMES: [(&str, char, f64); 3] = [("BHZ", 'V', 1.0), ("LDO", 'P', 0.01), ("BDF", 'I', 0.001)];

fn build(nchan: usize, spec: &[PacketSpec]) -> Vec<(Packet, Vec<Channel>)> {
    let mut at = T0;
    spec.iter()
        .enumerate()
        .map(|(k, (samples, gap))| {
            let p = packet(k as u64 + 1, at, &NAMES[..nchan], samples);
            at += samples[0].len() as i64 * 25_000 + i64::from(*gap) * 25_000;
            p
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_round_trip_through_resume(
        (nchan, spec) in stream(),
        split in any::<prop::sample::Index>(),
        v1 in any::<bool>(),
    ) {
        let version = if v1 { CdfVersion::Classic } else { CdfVersion::Offset64 };
        let packets = build(nchan, &spec);
        let split = split.index(packets.len() + 1);
        let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions { version });
        for (p, c) in &packets[..split] {
            w.append(p, c).unwrap();
        }
        w.flush().unwrap();
        let mut w = NetcdfWriter::resume(w.into_inner()).unwrap();
        for (p, c) in &packets[split..] {
            w.append(p, c).unwrap();
        }
        w.finish().unwrap();
        let mut expected_summary = FileSummary::default();
        packets.iter().for_each(|(p, c)| expected_summary.add(p, c));
        prop_assert_eq!(w.summary(), &expected_summary);
        let c = read(&mut Cursor::new(w.into_inner().into_inner())).unwrap();
        let mut times = Vec::new();
        let mut columns = vec![Vec::new(); nchan];
        for (_, chans) in &packets {
            for i in 0..chans[0].samples.len() {
                times.push(chans[0].sample_time(i).as_micros() - T0 / 1_000_000 * 1_000_000);
            }
            for (col, ch) in columns.iter_mut().zip(chans) {
                col.extend_from_slice(&ch.samples);
            }
        }
        // Whole microseconds, exactly: no rounding on the way back.
        prop_assert!(c.time.iter().all(|t| t.fract() == 0.0));
        let got: Vec<i64> = c.time.iter().map(|&t| t as i64).collect();
        prop_assert_eq!(got, times);
        for ((name, values), (meta, col)) in c.channels.iter().zip(NAMES.iter().zip(&columns)) {
            prop_assert_eq!(name.as_str(), meta.0);
            prop_assert_eq!(values, col);
        }
        // The CDL writer holds the same data.
        let mut cdl = CdlWriter::create(Vec::new(), CdlOptions { name: "x".into() });
        for (p, ch) in &packets {
            cdl.append(p, ch).unwrap();
        }
        let mut data = vec![VarData::Text(c.station.as_deref().unwrap()), VarData::Double(&c.time)];
        data.extend(c.channels.iter().map(|(_, v)| VarData::Int(v)));
        prop_assert_eq!(cdl.text(), render("x", &c.header.dataset, c.time.len(), &data));
    }

    #[test]
    fn overlaps_and_rate_changes_do_not_fit(
        (nchan, spec) in stream(),
        back in 2i64..1_000_000,
        rate_change in any::<bool>(),
    ) {
        let packets = build(nchan, &spec);
        let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default());
        for (p, c) in &packets {
            w.append(p, c).unwrap();
        }
        w.flush().unwrap();
        let before = w.get_ref().get_ref().clone();
        let end = w.summary().end.unwrap().as_micros();
        let (p, mut c) = packet(99, end - back, &NAMES[..nchan], &vec![vec![1]; nchan]);
        if rate_change {
            c.iter_mut().for_each(|c| { c.samprate = 20.0; c.start = Time::from_micros(end); });
        }
        let refused = matches!(w.append(&p, &c), Err(WriteError::DoesNotFit { .. }));
        prop_assert!(refused);
        w.flush().unwrap();
        prop_assert_eq!(w.get_ref().get_ref(), &before);
    }
}

/// A file that fails every write once `budget` bytes have been written.
#[derive(Debug)]
struct FailingFile {
    inner: Cursor<Vec<u8>>,
    budget: usize,
}

impl std::io::Read for FailingFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.budget {
            return Err(std::io::Error::other("disk full"));
        }
        self.budget -= buf.len();
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for FailingFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn a_failed_write_poisons_the_writer_and_the_file_keeps_its_counted_records() {
    let packets = fixture();
    let whole = write_nc(CdfVersion::Offset64, &packets);
    let mut w = NetcdfWriter::create(
        FailingFile {
            inner: Cursor::new(Vec::new()),
            budget: usize::MAX,
        },
        NetcdfOptions::default(),
    );
    w.append(&packets[0].0, &packets[0].1).unwrap();
    w.flush().unwrap();
    // Enough for the second packet's records, not for the header after them.
    w.w.budget = 3 * 16;
    w.append(&packets[1].0, &packets[1].1).unwrap();
    assert!(matches!(w.flush(), Err(WriteError::Io(_))));
    let err = w.append(&packets[1].0, &packets[1].1).unwrap_err();
    assert!(err.to_string().contains("resume"), "{err}");
    let file = w.into_inner().inner;
    let c = read(&mut file.clone()).unwrap();
    assert_eq!(c.time.len(), 3);
    let mut w = NetcdfWriter::resume(file).unwrap();
    w.append(&packets[1].0, &packets[1].1).unwrap();
    w.finish().unwrap();
    assert_eq!(w.into_inner().into_inner(), whole);
}

#[test]
fn the_reader_refuses_a_header_counting_missing_records() {
    let mut bytes = unhex(FIXTURE_CDF2);
    bytes.truncate(bytes.len() - 1);
    let err = read(&mut Cursor::new(bytes)).unwrap_err();
    assert!(err.to_string().contains("counts 6 records"), "{err}");
}

/// Station metadata for the fixture's station: a position, BHZ's orientation and
/// sensitivity, BDF's sensitivity only.
pub(crate) fn fixture_metadata() -> std::sync::Arc<crate::meta::Inventory> {
    let inv = crate::meta::table::parse(
        r#"
[[station]]
net = "XX"
sta = "STA01"
latitude = 45.5
longitude = -10.25
elevation = 120.0
site = "Hill"

[[station.channel]]
chan = "BHZ"
azimuth = 0.0
dip = -90.0
sensitivity = 1e9
sensitivity_frequency = 1.0
units = "m/s"

[[station.channel]]
chan = "BDF"
sensitivity = 1000.0
units = "Pa"
"#,
    )
    .unwrap();
    std::sync::Arc::new(inv)
}

fn write_nc_with(
    metadata: Option<std::sync::Arc<crate::meta::Inventory>>,
    packets: &[(Packet, Vec<Channel>)],
) -> Vec<u8> {
    let mut w = NetcdfWriter::create(Cursor::new(Vec::new()), NetcdfOptions::default())
        .with_metadata(metadata);
    for (p, c) in packets {
        w.append(p, c).unwrap();
        w.flush().unwrap();
    }
    w.finish().unwrap();
    w.into_inner().into_inner()
}

/// With metadata for its station a file is a CF single-station `timeSeries`: scalar
/// `lat`, `lon`, `alt` holding the position, channels naming them as coordinates and
/// carrying azimuth, dip and sensitivity where known, and a title with the site.
#[test]
fn metadata_makes_a_located_time_series() {
    let bytes = write_nc_with(Some(fixture_metadata()), &fixture());
    let c = read(&mut Cursor::new(bytes.clone())).unwrap();
    let ds = &c.header.dataset;
    let text = |attrs: &[model::Attr], name: &str| match model::find_attr(attrs, name) {
        Some(model::AttrValue::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let num = |attrs: &[model::Attr], name: &str| match model::find_attr(attrs, name) {
        Some(model::AttrValue::Double(v)) => Some(v[0]),
        _ => None,
    };
    assert_eq!(
        text(&ds.attrs, "title").unwrap(),
        "XX_STA01 (Hill): data archived by orb"
    );
    assert_eq!(text(&ds.attrs, "featureType").unwrap(), "timeSeries");
    let var = |name: &str| &ds.vars[ds.var_index(name).unwrap()];
    assert_eq!(
        text(&var("station").attrs, "cf_role").unwrap(),
        "timeseries_id"
    );
    let bhz = &var("BHZ").attrs;
    assert_eq!(
        text(bhz, "coordinates").unwrap(),
        "time lat lon alt station"
    );
    assert_eq!(
        (num(bhz, "azimuth"), num(bhz, "dip")),
        (Some(0.0), Some(-90.0))
    );
    assert_eq!(
        (num(bhz, "sensitivity"), num(bhz, "sensitivity_frequency")),
        (Some(1e9), Some(1.0))
    );
    assert_eq!(text(bhz, "sensitivity_units").unwrap(), "m/s");
    let bdf = &var("BDF").attrs;
    assert_eq!(
        (num(bdf, "azimuth"), num(bdf, "sensitivity")),
        (None, Some(1000.0))
    );
    assert_eq!(num(bdf, "sensitivity_frequency"), None);
    // The position is data: read it where the layout puts it.
    let layout = ds.layout(c.header.len as u64);
    let value = |name: &str| {
        let at = layout.begins[ds.var_index(name).unwrap()] as usize;
        f64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    assert_eq!(
        (value("lat"), value("lon"), value("alt")),
        (45.5, -10.25, 120.0)
    );
    assert_eq!(c.channels[0].1, vec![1, -2, 3, 4, 5, 6]);
    assert_eq!(c.station.as_deref(), Some("XX_STA01"));
}

/// Metadata that does not list the station leaves the file as without metadata: no
/// position, no `featureType`, no `cf_role`.
#[test]
fn a_station_missing_from_the_metadata_is_written_as_without() {
    let mut other = (*fixture_metadata()).clone();
    other.stations[0].sta = "STA02".into();
    let bytes = write_nc_with(Some(std::sync::Arc::new(other)), &fixture());
    assert_eq!(bytes, unhex(FIXTURE_CDF2));
    let ds = read(&mut Cursor::new(bytes)).unwrap().header.dataset;
    assert!(ds.attr("featureType").is_none() && ds.var_index("lat").is_none());
}

/// A file with metadata resumes with it (position read back from the data): what it
/// appends after a restart gives the same bytes as writing it in one go, and the
/// metadata given to the resumed writer's caller cannot change it.
#[test]
fn files_with_metadata_resume_with_it() {
    let mut packets = fixture();
    packets.push(packet(
        102,
        T0 + 1_075_000,
        &CHANS,
        &[vec![10, 11], vec![12, 13]],
    ));
    let whole = write_nc_with(Some(fixture_metadata()), &packets);
    let first = write_nc_with(Some(fixture_metadata()), &packets[..2]);
    let mut w = NetcdfWriter::resume(Cursor::new(first)).unwrap();
    let (p, c) = &packets[2];
    w.append(p, c).unwrap();
    w.finish().unwrap();
    assert_eq!(w.into_inner().into_inner(), whole);
}

/// A file written before files had a `title` resumes and is continued in its own
/// layout (a rewritten header must not change size or meaning): flushing changes no
/// byte, and an appended packet is counted under the same header.
#[test]
fn pre_title_files_resume_in_their_layout() {
    for (hex, version) in [
        (PRE_TITLE_FIXTURE_CDF1, CdfVersion::Classic),
        (PRE_TITLE_FIXTURE_CDF2, CdfVersion::Offset64),
    ] {
        let old = unhex(hex);
        let mut w = NetcdfWriter::resume(Cursor::new(old.clone())).unwrap();
        let mut all = FileSummary::default();
        fixture().iter().for_each(|(p, c)| all.add(p, c));
        assert_eq!(w.summary(), &all);
        w.flush().unwrap();
        assert_eq!(w.get_ref().get_ref(), &old);
        let (p, c) = packet(102, T0 + 1_075_000, &CHANS, &[vec![10, 11], vec![12, 13]]);
        w.append(&p, &c).unwrap();
        w.finish().unwrap();
        let bytes = w.into_inner().into_inner();
        let c = read(&mut Cursor::new(bytes.clone())).unwrap();
        assert_eq!(c.header.version, version);
        assert_eq!(c.time.len(), 8);
        let ds = &c.header.dataset;
        assert!(ds.attr("title").is_none());
        assert!(ds.attr("featureType").is_some());
        assert_eq!(c.header.len, header::decode(&old).unwrap().len);
        NetcdfWriter::resume(Cursor::new(bytes)).unwrap();
    }
}
