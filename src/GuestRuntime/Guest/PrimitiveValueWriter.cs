using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace IsolateGrains.Guest;

/// <summary>
/// Writes MessagePack's primitive forms straight into a span, in exactly the forms MessagePackWriter gives them
/// (integers in their smallest form, unsigned when not negative; strings with the narrowest header). In the guest's
/// interpreter MessagePackWriter's machinery (buffer writer, span bookkeeping, flush) costs more than the rest of a
/// small reply or callback request, so the common shapes are written here (the twin of <see cref="PrimitiveValueReader"/>).
/// </summary>
internal static class PrimitiveValueWriter
{
    // Strings longer than this are left to MessagePackWriter, which grows its buffer as it goes (the estimate for a
    // string is three bytes a character).
    private const int LongestDirectString = 16 * 1024;

    /// <summary>
    /// Writes the successful reply <c>[Success, value]</c> when <typeparamref name="T"/> is int, long, bool, double or
    /// string (not too long); false, with nothing written, for any other type (the serializer writes those).
    /// </summary>
    public static bool TryWriteSuccess<T>(IBufferWriter<byte> output, T value)
    {
        var most = MostBytes(value);
        if (most < 0)
        {
            return false;
        }
        var destination = output.GetSpan(2 + most);
        destination[0] = 0x92; // [Success, value]
        destination[1] = (byte)IsolateGrains.Protocol.ReplyStatus.Success;
        var at = 2;
        WriteValue(destination, ref at, value);
        output.Advance(at);
        return true;
    }

    /// <summary>
    /// Like <see cref="TryWriteSuccess{T}"/> for a boxed <paramref name="value"/> declared as <paramref name="declaredType"/>:
    /// written here when the declared type is one of those types (a string may be null).
    /// </summary>
    public static bool TryWriteBoxedSuccess(IBufferWriter<byte> output, object? value, Type declaredType) => value switch
    {
        int number when declaredType == typeof(int) => TryWriteSuccess(output, number),
        long number when declaredType == typeof(long) => TryWriteSuccess(output, number),
        bool flag when declaredType == typeof(bool) => TryWriteSuccess(output, flag),
        double real when declaredType == typeof(double) => TryWriteSuccess(output, real),
        string or null when declaredType == typeof(string) => TryWriteSuccess(output, (string?)value),
        _ => false,
    };

    /// <summary>The most bytes <see cref="WriteValue"/> takes for <paramref name="value"/>, or -1 when it does not write that type.</summary>
    private static int MostBytes<T>(T value)
    {
        if (typeof(T) == typeof(int) || typeof(T) == typeof(bool))
        {
            return 5;
        }
        if (typeof(T) == typeof(long) || typeof(T) == typeof(double))
        {
            return 9;
        }
        if (typeof(T) == typeof(string))
        {
            var text = Unsafe.As<T, string?>(ref value);
            return text is null ? 1 : text.Length <= LongestDirectString ? 5 + 3 * text.Length : -1;
        }
        return -1;
    }

    private static void WriteValue<T>(Span<byte> destination, ref int at, T value)
    {
        if (typeof(T) == typeof(int))
        {
            WriteInteger(destination, ref at, Unsafe.As<T, int>(ref value));
        }
        else if (typeof(T) == typeof(long))
        {
            WriteInteger(destination, ref at, Unsafe.As<T, long>(ref value));
        }
        else if (typeof(T) == typeof(bool))
        {
            destination[at++] = Unsafe.As<T, bool>(ref value) ? (byte)0xc3 : (byte)0xc2;
        }
        else if (typeof(T) == typeof(double))
        {
            WriteDouble(destination, ref at, Unsafe.As<T, double>(ref value));
        }
        else if (Unsafe.As<T, string?>(ref value) is { } text)
        {
            WriteString(destination, ref at, text);
        }
        else
        {
            destination[at++] = 0xc0; // a null string
        }
    }

    /// <summary>A double as MessagePackWriter writes it: always the 8-byte form.</summary>
    public static void WriteDouble(Span<byte> destination, ref int at, double value)
    {
        destination[at++] = 0xcb;
        BinaryPrimitives.WriteDoubleBigEndian(destination[at..], value);
        at += 8;
    }

    /// <summary>An array header (fixarray, array16 or array32) for <paramref name="count"/> elements.</summary>
    public static void WriteArrayHeader(Span<byte> destination, ref int at, int count)
    {
        if (count <= 15)
        {
            destination[at++] = (byte)(0x90 | count); // fixarray
            return;
        }
        WriteSizedHeader(destination, ref at, count, code8: null, code16: 0xdc, code32: 0xdd);
    }

    /// <summary>An integer in the form MessagePackWriter.Write(long) gives it: the smallest, unsigned when not negative.</summary>
    public static void WriteInteger(Span<byte> destination, ref int at, long value)
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

    /// <summary>A string with the narrowest header that holds its UTF-8 length.</summary>
    public static void WriteString(Span<byte> destination, ref int at, string text)
    {
        if (text.Length * 3 <= 31)
        {
            // At most 31 bytes in UTF-8: a fixstr whatever the characters, so encode in place behind its one-byte header.
            var length = Encoding.UTF8.GetBytes(text, destination[(at + 1)..]);
            destination[at] = (byte)(0xa0 | length);
            at += 1 + length;
            return;
        }
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

    /// <summary>A string header (fixstr, str8, str16 or str32) for <paramref name="length"/> bytes.</summary>
    public static void WriteStringHeader(Span<byte> destination, ref int at, int length)
    {
        if (length <= 31)
        {
            destination[at++] = (byte)(0xa0 | length); // fixstr
            return;
        }
        WriteSizedHeader(destination, ref at, length, code8: 0xd9, code16: 0xda, code32: 0xdb);
    }

    /// <summary>A binary header (bin8, bin16 or bin32) for <paramref name="length"/> bytes.</summary>
    public static void WriteBinaryHeader(Span<byte> destination, ref int at, int length) =>
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
