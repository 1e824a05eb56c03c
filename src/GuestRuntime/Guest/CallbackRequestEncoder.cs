using System.Buffers.Binary;
using System.Text;

namespace IsolateGrains.Guest;

/// <summary>
/// Encodes the common callback request, <c>[kind, name, [args...], operation?]</c> with arguments that are all null,
/// bool, int, long, double, string or byte[], straight into a span. In the guest's interpreter, MessagePackWriter's
/// machinery (buffer writer, span bookkeeping, flush) costs about as much as the host's whole handling of a callback;
/// these few shapes are written directly instead. The bytes are the same MessagePackWriter writes for these values
/// (integers in their smallest form, unsigned when not negative: a host callback taking <c>object</c> sees the same
/// types either way); requests with any other argument are left to it.
/// </summary>
internal static class CallbackRequestEncoder
{
    // Requests that may be larger than this are left to MessagePackWriter, which grows its buffer as it goes (the
    // estimate for a string is three bytes a character).
    private const long LargestMeasured = 64 * 1024;

    /// <summary>The most bytes the request can take, or -1 when an argument is not one of the handled types (or the request is large).</summary>
    public static int MeasureOrNegative(ReadOnlySpan<byte> name, object?[] args)
    {
        long size = 1 + 5 + 5 + name.Length + 5 + 5;
        foreach (var arg in args)
        {
            switch (arg)
            {
                case null or bool:
                    size += 1;
                    break;
                case int:
                    size += 5;
                    break;
                case long or double:
                    size += 9;
                    break;
                case string text:
                    size += 5 + 3L * (text.Length + 1); // Encoding.UTF8.GetMaxByteCount, without its overflow check
                    break;
                case byte[] bytes when bytes.GetType() == typeof(byte[]):
                    // Exactly byte[]: arrays of sbyte or of byte-sized enums pass "is byte[]" too, but are not binary.
                    size += 5 + bytes.Length;
                    break;
                default:
                    return -1;
            }
        }
        return size <= LargestMeasured ? (int)size : -1;
    }

    /// <summary>Writes the request (the arguments passed <see cref="MeasureOrNegative"/>); returns the bytes written.</summary>
    public static int Write(Span<byte> destination, int kind, ReadOnlySpan<byte> name, object?[] args, int? operation)
    {
        var at = 0;
        WriteArrayHeader(destination, ref at, operation is null ? 3 : 4);
        WriteInteger(destination, ref at, kind);
        WriteStringHeader(destination, ref at, name.Length);
        name.CopyTo(destination[at..]);
        at += name.Length;
        WriteArrayHeader(destination, ref at, args.Length);
        foreach (var arg in args)
        {
            switch (arg)
            {
                case null:
                    destination[at++] = 0xc0;
                    break;
                case bool value:
                    destination[at++] = value ? (byte)0xc3 : (byte)0xc2;
                    break;
                case int value:
                    WriteInteger(destination, ref at, value);
                    break;
                case long value:
                    WriteInteger(destination, ref at, value);
                    break;
                case double value:
                    destination[at++] = 0xcb;
                    BinaryPrimitives.WriteDoubleBigEndian(destination[at..], value);
                    at += 8;
                    break;
                case string text:
                    WriteString(destination, ref at, text);
                    break;
                case byte[] bytes when bytes.GetType() == typeof(byte[]):
                    WriteBinaryHeader(destination, ref at, bytes.Length);
                    bytes.CopyTo(destination[at..]);
                    at += bytes.Length;
                    break;
                default:
                    throw new ArgumentException($"Arguments of type {arg.GetType()} are not encoded here.", nameof(args));
            }
        }
        if (operation is { } id)
        {
            WriteInteger(destination, ref at, id);
        }
        return at;
    }

    private static void WriteArrayHeader(Span<byte> destination, ref int at, int count)
    {
        if (count <= 15)
        {
            destination[at++] = (byte)(0x90 | count); // fixarray
            return;
        }
        WriteSizedHeader(destination, ref at, count, code8: null, code16: 0xdc, code32: 0xdd);
    }

    /// <summary>An integer in the form MessagePackWriter.Write(long) gives it: the smallest, unsigned when not negative.</summary>
    private static void WriteInteger(Span<byte> destination, ref int at, long value)
    {
        switch (value)
        {
            case >= 0 and <= 0x7f:
                destination[at++] = (byte)value; // positive fixint
                break;
            case >= 0 and <= byte.MaxValue:
                destination[at++] = 0xcc;
                destination[at++] = (byte)value;
                break;
            case >= 0 and <= ushort.MaxValue:
                destination[at++] = 0xcd;
                BinaryPrimitives.WriteUInt16BigEndian(destination[at..], (ushort)value);
                at += 2;
                break;
            case >= 0 and <= uint.MaxValue:
                destination[at++] = 0xce;
                BinaryPrimitives.WriteUInt32BigEndian(destination[at..], (uint)value);
                at += 4;
                break;
            case >= 0:
                destination[at++] = 0xcf;
                BinaryPrimitives.WriteUInt64BigEndian(destination[at..], (ulong)value);
                at += 8;
                break;
            case >= -32:
                destination[at++] = unchecked((byte)value); // negative fixint (0xe0-0xff)
                break;
            case >= sbyte.MinValue:
                destination[at++] = 0xd0;
                destination[at++] = unchecked((byte)value);
                break;
            case >= short.MinValue:
                destination[at++] = 0xd1;
                BinaryPrimitives.WriteInt16BigEndian(destination[at..], (short)value);
                at += 2;
                break;
            case >= int.MinValue:
                destination[at++] = 0xd2;
                BinaryPrimitives.WriteInt32BigEndian(destination[at..], (int)value);
                at += 4;
                break;
            default:
                destination[at++] = 0xd3;
                BinaryPrimitives.WriteInt64BigEndian(destination[at..], value);
                at += 8;
                break;
        }
    }

    private static void WriteString(Span<byte> destination, ref int at, string text)
    {
        // The header's size depends on the encoded length: encode after the widest header, then close the gap.
        var encoded = Encoding.UTF8.GetBytes(text, destination[(at + 5)..]);
        var start = at;
        WriteStringHeader(destination, ref at, encoded);
        if (at != start + 5)
        {
            destination.Slice(start + 5, encoded).CopyTo(destination[at..]);
        }
        at += encoded;
    }

    private static void WriteStringHeader(Span<byte> destination, ref int at, int length)
    {
        if (length <= 31)
        {
            destination[at++] = (byte)(0xa0 | length); // fixstr
            return;
        }
        WriteSizedHeader(destination, ref at, length, code8: 0xd9, code16: 0xda, code32: 0xdb);
    }

    private static void WriteBinaryHeader(Span<byte> destination, ref int at, int length) =>
        WriteSizedHeader(destination, ref at, length, code8: 0xc4, code16: 0xc5, code32: 0xc6);

    /// <summary>A length or count after the code of the narrowest form that holds it: one byte (where the type has that form), two or four.</summary>
    private static void WriteSizedHeader(Span<byte> destination, ref int at, int length, byte? code8, byte code16, byte code32)
    {
        if (code8 is { } narrow && length <= byte.MaxValue)
        {
            destination[at++] = narrow;
            destination[at++] = (byte)length;
        }
        else if (length <= ushort.MaxValue)
        {
            destination[at++] = code16;
            BinaryPrimitives.WriteUInt16BigEndian(destination[at..], (ushort)length);
            at += 2;
        }
        else
        {
            destination[at++] = code32;
            BinaryPrimitives.WriteUInt32BigEndian(destination[at..], (uint)length);
            at += 4;
        }
    }
}
