using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace IsolateGrains.Guest;

/// <summary>
/// Reads a callback's result when it is an int, long, bool or string in the compact forms the host writes them,
/// straight from the reply's bytes: for these, building a MessagePackReader and going through the serializer costs
/// the guest's interpreter more than the rest of reading the reply. Anything else (another type, another form, or
/// bytes left over) is left to the serializer, which also reports malformed values.
/// </summary>
internal static class PrimitiveValueReader
{
    /// <summary>Reads <paramref name="encoded"/>, which must be exactly one value, as <typeparamref name="T"/>; false to use the serializer.</summary>
    public static bool TryRead<T>(ReadOnlySpan<byte> encoded, out T value)
    {
        var at = 0;
        return TryRead(encoded, ref at, out value) && at == encoded.Length;
    }

    /// <summary>
    /// Reads one value at <paramref name="at"/> of <paramref name="bytes"/> as <typeparamref name="T"/> (int, long, bool,
    /// double or string) and moves past it; false, with <paramref name="at"/> unchanged, for another type, another form or
    /// too few bytes (the serializer then reads it, and reports what is wrong).
    /// </summary>
    public static bool TryRead<T>(ReadOnlySpan<byte> bytes, ref int at, out T value)
    {
        value = default!;
        var next = at;
        if (typeof(T) == typeof(int))
        {
            if (!TryReadInteger(bytes, ref next, out var number) || number is < int.MinValue or > int.MaxValue)
            {
                return false;
            }
            var narrow = (int)number;
            value = Unsafe.As<int, T>(ref narrow);
        }
        else if (typeof(T) == typeof(long))
        {
            if (!TryReadInteger(bytes, ref next, out var number))
            {
                return false;
            }
            value = Unsafe.As<long, T>(ref number);
        }
        else if (typeof(T) == typeof(bool))
        {
            if (next >= bytes.Length || bytes[next] is not (0xc2 or 0xc3))
            {
                return false;
            }
            var flag = bytes[next++] == 0xc3;
            value = Unsafe.As<bool, T>(ref flag);
        }
        else if (typeof(T) == typeof(double))
        {
            if (!TryReadDouble(bytes, ref next, out var real))
            {
                return false;
            }
            value = Unsafe.As<double, T>(ref real);
        }
        else if (typeof(T) == typeof(string))
        {
            if (!TryReadString(bytes, ref next, out var text))
            {
                return false;
            }
            value = Unsafe.As<string?, T>(ref text);
        }
        else
        {
            return false;
        }
        at = next;
        return true;
    }

    /// <summary>
    /// Reads an unsigned integer (any of MessagePack's forms for one that is not negative) at <paramref name="at"/> of
    /// <paramref name="bytes"/> and moves past it.
    /// </summary>
    public static SpanRead ReadUnsigned(ReadOnlySpan<byte> bytes, ref int at, out ulong value)
    {
        value = 0;
        if (at >= bytes.Length)
        {
            return SpanRead.Truncated;
        }
        var code = bytes[at];
        if (code is not (<= 0x7f or >= 0xe0) && IntegerSize(code) < 0)
        {
            return SpanRead.OtherType;
        }
        if (code == 0xcf)
        {
            // uint64: the one form that may hold more than a long does.
            if (at + 9 > bytes.Length)
            {
                return SpanRead.Truncated;
            }
            value = BinaryPrimitives.ReadUInt64BigEndian(bytes.Slice(at + 1, 8));
            at += 9;
            return SpanRead.Done;
        }
        var next = at;
        if (!TryReadInteger(bytes, ref next, out var number))
        {
            return SpanRead.Truncated;
        }
        if (number < 0)
        {
            return SpanRead.OtherType;
        }
        value = (ulong)number;
        at = next;
        return SpanRead.Done;
    }

    /// <summary>How many bytes follow the code of an integer form (not a fixint), or -1 when the code is not one.</summary>
    private static int IntegerSize(byte code) => code switch
    {
        0xcc or 0xd0 => 1,
        0xcd or 0xd1 => 2,
        0xce or 0xd2 => 4,
        0xcf or 0xd3 => 8,
        _ => -1,
    };

    /// <summary>An integer in any of MessagePack's forms that fits a long.</summary>
    private static bool TryReadInteger(ReadOnlySpan<byte> bytes, ref int at, out long number)
    {
        number = 0;
        if (at >= bytes.Length)
        {
            return false;
        }
        var code = bytes[at];
        if (code <= 0x7f || code >= 0xe0)
        {
            number = (sbyte)code; // a positive or negative fixint (0x00-0x7f read as sbyte is the same number)
            at++;
            return true;
        }
        var size = IntegerSize(code);
        if (size < 0 || at + 1 + size > bytes.Length)
        {
            return false;
        }
        var field = bytes.Slice(at + 1, size);
        switch (code)
        {
            case 0xcc:
                number = field[0];
                break;
            case 0xcd:
                number = BinaryPrimitives.ReadUInt16BigEndian(field);
                break;
            case 0xce:
                number = BinaryPrimitives.ReadUInt32BigEndian(field);
                break;
            case 0xcf:
                var unsigned = BinaryPrimitives.ReadUInt64BigEndian(field);
                if (unsigned > long.MaxValue)
                {
                    return false;
                }
                number = (long)unsigned;
                break;
            case 0xd0:
                number = (sbyte)field[0];
                break;
            case 0xd1:
                number = BinaryPrimitives.ReadInt16BigEndian(field);
                break;
            case 0xd2:
                number = BinaryPrimitives.ReadInt32BigEndian(field);
                break;
            default:
                number = BinaryPrimitives.ReadInt64BigEndian(field);
                break;
        }
        at += 1 + size;
        return true;
    }

    /// <summary>A float64 or float32.</summary>
    private static bool TryReadDouble(ReadOnlySpan<byte> bytes, ref int at, out double real)
    {
        real = 0;
        if (at < bytes.Length && bytes[at] == 0xcb && at + 9 <= bytes.Length)
        {
            real = BinaryPrimitives.ReadDoubleBigEndian(bytes.Slice(at + 1, 8));
            at += 9;
            return true;
        }
        if (at < bytes.Length && bytes[at] == 0xca && at + 5 <= bytes.Length)
        {
            real = BinaryPrimitives.ReadSingleBigEndian(bytes.Slice(at + 1, 4));
            at += 5;
            return true;
        }
        return false;
    }

    /// <summary>A string (nil: null) in the fixstr, str8 or str16 form.</summary>
    private static bool TryReadString(ReadOnlySpan<byte> bytes, ref int at, out string? text)
    {
        text = null;
        if (at >= bytes.Length)
        {
            return false;
        }
        var code = bytes[at];
        int start, length;
        switch (code)
        {
            case 0xc0:
                at++;
                return true; // nil: a null string
            case >= 0xa0 and <= 0xbf:
                (start, length) = (1, code & 0x1f);
                break;
            case 0xd9 when at + 2 <= bytes.Length:
                (start, length) = (2, bytes[at + 1]);
                break;
            case 0xda when at + 3 <= bytes.Length:
                (start, length) = (3, BinaryPrimitives.ReadUInt16BigEndian(bytes.Slice(at + 1, 2)));
                break;
            default:
                return false;
        }
        if (at + start + length > bytes.Length)
        {
            return false;
        }
        text = Encoding.UTF8.GetString(bytes.Slice(at + start, length));
        at += start + length;
        return true;
    }
}

/// <summary>How reading a value straight from bytes went.</summary>
internal enum SpanRead
{
    /// <summary>The value was read.</summary>
    Done,
    /// <summary>The bytes end before the value does.</summary>
    Truncated,
    /// <summary>The bytes hold a value of another type.</summary>
    OtherType,
}
